/*
 * nnp: installed setuid-root in the nonewprivs image. It reports the effective
 * uid it got: 0 when the kernel honoured the setuid bit, the caller's uid when
 * no_new_privs stopped the escalation.
 */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    printf("Effective uid: %d\n", (int)geteuid());
    return 0;
}
