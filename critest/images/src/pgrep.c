/*
 * pgrep: print the PIDs of processes whose name matches an extended regular
 * expression. Debian's busybox-static has no pgrep applet.
 *
 *   pgrep [-f] [-l] [-x] PATTERN
 *     -f  match the whole command line instead of the process name
 *     -l  print the matched name or command line after the PID
 *     -x  the pattern must match the whole name (or command line)
 *
 * Exit status: 0 if something matched, 1 if nothing did, 2 on a usage error.
 */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct options {
    int full_command_line;
    int list_names;
    int exact;
    const char *pattern;
};

static void usage(void) {
    fprintf(stderr, "usage: pgrep [-f] [-l] [-x] PATTERN\n");
    exit(2);
}

static struct options parse_options(int argc, char **argv) {
    struct options opts = {0, 0, 0, NULL};
    int flag;

    while ((flag = getopt(argc, argv, "flx")) != -1) {
        switch (flag) {
        case 'f': opts.full_command_line = 1; break;
        case 'l': opts.list_names = 1; break;
        case 'x': opts.exact = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1) {
        usage();
    }
    opts.pattern = argv[optind];
    return opts;
}

static void compile_pattern(const struct options *opts, regex_t *regex) {
    char *anchored = NULL;
    const char *source = opts->pattern;
    int status;

    if (opts->exact) {
        size_t size = strlen(opts->pattern) + 5;
        anchored = malloc(size);
        if (anchored == NULL) {
            perror("pgrep");
            exit(2);
        }
        snprintf(anchored, size, "^(%s)$", opts->pattern);
        source = anchored;
    }
    status = regcomp(regex, source, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    if (status != 0) {
        fprintf(stderr, "pgrep: invalid pattern: %s\n", opts->pattern);
        exit(2);
    }
}

/* Reads at most size-1 bytes of a /proc file; returns the length or -1. */
static ssize_t read_proc_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t total = 0;
    ssize_t got;

    if (fd < 0) {
        return -1;
    }
    while ((size_t)total < size - 1 && (got = read(fd, buf + total, size - 1 - total)) > 0) {
        total += got;
    }
    close(fd);
    buf[total] = '\0';
    return total;
}

static int read_process_name(const char *pid, char *buf, size_t size) {
    char path[288];
    ssize_t len;

    snprintf(path, sizeof(path), "/proc/%s/comm", pid);
    len = read_proc_file(path, buf, size);
    if (len < 0) {
        return -1;
    }
    if (len > 0 && buf[len - 1] == '\n') {
        buf[len - 1] = '\0';
    }
    return 0;
}

/* The command line with its NUL separators turned into spaces. */
static int read_command_line(const char *pid, char *buf, size_t size) {
    char path[288];
    ssize_t len;

    snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
    len = read_proc_file(path, buf, size);
    if (len < 0) {
        return -1;
    }
    while (len > 0 && buf[len - 1] == '\0') {
        len--;
    }
    for (ssize_t i = 0; i < len; i++) {
        if (buf[i] == '\0') {
            buf[i] = ' ';
        }
    }
    buf[len] = '\0';
    /* Kernel threads have no command line; fall back to their name. */
    return len > 0 ? 0 : read_process_name(pid, buf, size);
}

static int is_pid(const char *name) {
    if (*name == '\0') {
        return 0;
    }
    for (; *name != '\0'; name++) {
        if (!isdigit((unsigned char)*name)) {
            return 0;
        }
    }
    return 1;
}

int main(int argc, char **argv) {
    struct options opts = parse_options(argc, argv);
    regex_t regex;
    DIR *proc;
    struct dirent *entry;
    char text[4096];
    char self[32];
    int matched = 0;

    compile_pattern(&opts, &regex);
    snprintf(self, sizeof(self), "%d", (int)getpid());
    proc = opendir("/proc");
    if (proc == NULL) {
        perror("pgrep: /proc");
        return 2;
    }
    while ((entry = readdir(proc)) != NULL) {
        if (!is_pid(entry->d_name) || strcmp(entry->d_name, self) == 0) {
            continue;
        }
        int status = opts.full_command_line ? read_command_line(entry->d_name, text, sizeof(text))
                                            : read_process_name(entry->d_name, text, sizeof(text));
        if (status != 0 || regexec(&regex, text, 0, NULL, 0) != 0) {
            continue;
        }
        matched = 1;
        if (opts.list_names) {
            printf("%s %s\n", entry->d_name, text);
        } else {
            printf("%s\n", entry->d_name);
        }
    }
    closedir(proc);
    regfree(&regex);
    return matched ? 0 : 1;
}
