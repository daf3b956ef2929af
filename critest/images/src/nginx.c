/*
 * nginx: a stand-in for the nginx master process of the web-server test images.
 *
 * The conformance specs only observe what a master process shows from outside:
 *   - its command line reads "nginx: master process ..." and its name is "nginx";
 *   - it writes its PID to /var/run/nginx.pid;
 *   - something answers HTTP 200 on "/" at the port of the "listen" directive.
 * The serving is done by a busybox httpd child; this process supervises it,
 * forwards SIGTERM/SIGINT/SIGQUIT to it and reaps any orphan it inherits as PID 1.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TITLE_PREFIX "nginx: master process"
#define PID_FILE "/var/run/nginx.pid"
#define CONFIG_FILE "/etc/nginx/conf.d/default.conf"
#define DOCUMENT_ROOT "/usr/share/nginx/html"
#define HTTPD "/bin/httpd"
#define DEFAULT_PORT 80

static volatile sig_atomic_t stop_signal = 0;

static void remember_stop_signal(int signum) {
    stop_signal = signum;
}

/*
 * Re-executes this program with argv[0] set to the nginx-style title, so that
 * /proc/PID/cmdline shows it while the process keeps its PID and its name.
 */
static void retitle(int argc, char **argv) {
    char exe[PATH_MAX];
    char title[4096];
    size_t used;
    ssize_t len;

    if (strncmp(argv[0], TITLE_PREFIX, strlen(TITLE_PREFIX)) == 0) {
        return;
    }
    len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len < 0) {
        return; /* no /proc: keep running with the plain command line */
    }
    exe[len] = '\0';
    used = (size_t)snprintf(title, sizeof(title), "%s", TITLE_PREFIX);
    for (int i = 0; i < argc && used < sizeof(title); i++) {
        used += (size_t)snprintf(title + used, sizeof(title) - used, " %s", argv[i]);
    }
    char *const new_argv[] = {title, NULL};
    execv(exe, new_argv);
    perror("nginx: re-exec");
}

/* The port of the first "listen N" directive of the site configuration. */
static int listen_port(void) {
    FILE *config = fopen(CONFIG_FILE, "re");
    char line[512];
    int port = DEFAULT_PORT;

    if (config == NULL) {
        return port;
    }
    while (fgets(line, sizeof(line), config) != NULL) {
        char *directive = strstr(line, "listen");
        if (directive != NULL) {
            int value = atoi(directive + strlen("listen"));
            if (value > 0 && value < 65536) {
                port = value;
                break;
            }
        }
    }
    fclose(config);
    return port;
}

static void write_pid_file(void) {
    FILE *file = fopen(PID_FILE, "we");

    if (file == NULL) {
        perror("nginx: " PID_FILE);
        exit(1);
    }
    fprintf(file, "%d\n", (int)getpid());
    fclose(file);
}

static pid_t start_server(int port, const sigset_t *original_mask) {
    char port_text[16];
    pid_t child;

    snprintf(port_text, sizeof(port_text), "%d", port);
    child = fork();
    if (child == 0) {
        char *const server_argv[] = {"httpd", "-f", "-p", port_text, "-h", DOCUMENT_ROOT, NULL};
        sigprocmask(SIG_SETMASK, original_mask, NULL);
        execv(HTTPD, server_argv);
        perror("nginx: " HTTPD);
        _exit(127);
    }
    if (child < 0) {
        perror("nginx: fork");
        exit(1);
    }
    return child;
}

static void ignore_signal(int signum) {
    (void)signum;
}

/*
 * Blocks the stop signals and SIGCHLD outside of sigsuspend(), so that none can
 * slip in between checking for it and going to sleep. Returns the previous mask.
 */
static sigset_t install_signal_handlers(void) {
    const int stop_signals[] = {SIGTERM, SIGINT, SIGQUIT};
    struct sigaction action;
    sigset_t watched;
    sigset_t original;

    sigemptyset(&watched);
    sigaddset(&watched, SIGCHLD);
    memset(&action, 0, sizeof(action));
    sigemptyset(&action.sa_mask);
    action.sa_handler = remember_stop_signal;
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
        sigaddset(&watched, stop_signals[i]);
        sigaction(stop_signals[i], &action, NULL);
    }
    /* SIGCHLD is ignored by default, which would never wake sigsuspend(). */
    action.sa_handler = ignore_signal;
    sigaction(SIGCHLD, &action, NULL);
    sigprocmask(SIG_BLOCK, &watched, &original);
    return original;
}

/* Reaps every exited child; returns 1 once the server is among them, -1 on error. */
static int reap_children(pid_t server, int *server_status) {
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == server) {
            *server_status = status;
            return 1;
        }
    }
    return pid < 0 && errno != EINTR ? -1 : 0;
}

/* Waits for the server to exit, forwarding a stop request to it once. */
static int supervise(pid_t server, const sigset_t *original_mask) {
    int forwarded = 0;
    int status = 0;
    int reaped;

    while ((reaped = reap_children(server, &status)) == 0) {
        if (stop_signal != 0 && !forwarded) {
            kill(server, SIGTERM);
            forwarded = 1;
        }
        sigsuspend(original_mask);
    }
    if (reaped < 0) {
        return 1;
    }
    if (stop_signal != 0) {
        return 0;
    }
    fprintf(stderr, "nginx: server exited unexpectedly\n");
    return WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv) {
    sigset_t original_mask;
    int exit_code;

    retitle(argc, argv);
    original_mask = install_signal_handlers();
    write_pid_file();
    exit_code = supervise(start_server(listen_port(), &original_mask), &original_mask);
    unlink(PID_FILE);
    return exit_code;
}
