/*
 * ipcs: list System V IPC objects of the caller's IPC namespace, read from
 * /proc/sysvipc. Debian's busybox-static has no ipcs applet.
 *
 *   ipcs [-a] [-m] [-q] [-s]     (no option: all three kinds)
 *
 * The table layout follows util-linux so that scripts written for it keep working.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHM_DEST_FLAG 01000
#define SHM_LOCKED_FLAG 02000

enum { SHOW_SHM = 1, SHOW_QUEUES = 2, SHOW_SEMAPHORES = 4, SHOW_ALL = 7 };

static int parse_options(int argc, char **argv) {
    int kinds = 0;
    int flag;

    while ((flag = getopt(argc, argv, "amqs")) != -1) {
        switch (flag) {
        case 'a': kinds |= SHOW_ALL; break;
        case 'm': kinds |= SHOW_SHM; break;
        case 'q': kinds |= SHOW_QUEUES; break;
        case 's': kinds |= SHOW_SEMAPHORES; break;
        default:
            fprintf(stderr, "usage: ipcs [-a] [-m] [-q] [-s]\n");
            exit(1);
        }
    }
    return kinds == 0 ? SHOW_ALL : kinds;
}

/* The user name for uid from /etc/passwd, or the number when it has none. */
static void owner_name(unsigned long uid, char *out, size_t size) {
    FILE *passwd = fopen("/etc/passwd", "re");
    char line[512];

    snprintf(out, size, "%lu", uid);
    if (passwd == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), passwd) != NULL) {
        char *name = strtok(line, ":");
        char *password = name ? strtok(NULL, ":") : NULL;
        char *id = password ? strtok(NULL, ":") : NULL;
        if (id != NULL && strtoul(id, NULL, 10) == uid) {
            snprintf(out, size, "%s", name);
            break;
        }
    }
    fclose(passwd);
}

/* Opens a /proc/sysvipc table and skips its header line. */
static FILE *open_table(const char *path) {
    FILE *table = fopen(path, "re");
    char header[512];

    if (table != NULL && fgets(header, sizeof(header), table) == NULL) {
        fclose(table);
        return NULL;
    }
    return table;
}

static void list_shared_memory(void) {
    FILE *table = open_table("/proc/sysvipc/shm");
    char line[512];
    char owner[64];
    long key;
    unsigned long id, perms, bytes, cpid, lpid, nattch, uid;

    printf("\n------ Shared Memory Segments --------\n");
    printf("%-10s %-10s %-10s %-10s %-10s %-10s %-12s\n",
           "key", "shmid", "owner", "perms", "bytes", "nattch", "status");
    while (table != NULL && fgets(line, sizeof(line), table) != NULL) {
        if (sscanf(line, "%ld %lu %lo %lu %lu %lu %lu %lu",
                   &key, &id, &perms, &bytes, &cpid, &lpid, &nattch, &uid) != 8) {
            continue;
        }
        owner_name(uid, owner, sizeof(owner));
        printf("0x%08lx %-10lu %-10s %-10lo %-10lu %-10lu %s%s\n",
               (unsigned long)(unsigned int)key, id, owner, perms & 0777, bytes, nattch,
               (perms & SHM_DEST_FLAG) ? "dest " : "", (perms & SHM_LOCKED_FLAG) ? "locked" : "");
    }
    printf("\n");
    if (table != NULL) {
        fclose(table);
    }
}

static void list_message_queues(void) {
    FILE *table = open_table("/proc/sysvipc/msg");
    char line[512];
    char owner[64];
    long key;
    unsigned long id, perms, used_bytes, messages, lspid, lrpid, uid;

    printf("\n------ Message Queues --------\n");
    printf("%-10s %-10s %-10s %-10s %-12s %-11s\n",
           "key", "msqid", "owner", "perms", "used-bytes", "messages");
    while (table != NULL && fgets(line, sizeof(line), table) != NULL) {
        if (sscanf(line, "%ld %lu %lo %lu %lu %lu %lu %lu",
                   &key, &id, &perms, &used_bytes, &messages, &lspid, &lrpid, &uid) != 8) {
            continue;
        }
        owner_name(uid, owner, sizeof(owner));
        printf("0x%08lx %-10lu %-10s %-10lo %-12lu %-11lu\n",
               (unsigned long)(unsigned int)key, id, owner, perms & 0777, used_bytes, messages);
    }
    printf("\n");
    if (table != NULL) {
        fclose(table);
    }
}

static void list_semaphores(void) {
    FILE *table = open_table("/proc/sysvipc/sem");
    char line[512];
    char owner[64];
    long key;
    unsigned long id, perms, nsems, uid;

    printf("\n------ Semaphore Arrays --------\n");
    printf("%-10s %-10s %-10s %-10s %-10s\n", "key", "semid", "owner", "perms", "nsems");
    while (table != NULL && fgets(line, sizeof(line), table) != NULL) {
        if (sscanf(line, "%ld %lu %lo %lu %lu", &key, &id, &perms, &nsems, &uid) != 5) {
            continue;
        }
        owner_name(uid, owner, sizeof(owner));
        printf("0x%08lx %-10lu %-10s %-10lo %-10lu\n",
               (unsigned long)(unsigned int)key, id, owner, perms & 0777, nsems);
    }
    printf("\n");
    if (table != NULL) {
        fclose(table);
    }
}

int main(int argc, char **argv) {
    int kinds = parse_options(argc, argv);

    if (kinds & SHOW_QUEUES) {
        list_message_queues();
    }
    if (kinds & SHOW_SHM) {
        list_shared_memory();
    }
    if (kinds & SHOW_SEMAPHORES) {
        list_semaphores();
    }
    return 0;
}
