/*
 * pause: the infrastructure process of a pod sandbox.
 *
 * It keeps the sandbox's namespaces alive by sleeping in pause(2). When it is
 * PID 1 of a shared PID namespace it inherits orphans, so it reaps them.
 * SIGINT and SIGTERM end it with status 0, which is what runtimes expect on stop.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "critest-images"

static void exit_cleanly(int signum) {
    (void)signum;
    _exit(0);
}

static void reap_children(int signum) {
    (void)signum;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static void install_handler(int signum, void (*handler)(int), int flags) {
    struct sigaction action;

    memset(&action, 0, sizeof(action));
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    if (sigaction(signum, &action, NULL) != 0) {
        perror("pause: sigaction");
        _exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        printf("pause %s\n", PAUSE_VERSION);
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "pause: warning: not running as PID 1\n");
    }
    install_handler(SIGINT, exit_cleanly, 0);
    install_handler(SIGTERM, exit_cleanly, 0);
    install_handler(SIGCHLD, reap_children, SA_NOCLDSTOP | SA_RESTART);
    for (;;) {
        pause();
    }
}
