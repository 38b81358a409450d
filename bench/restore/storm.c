/*
 * storm - a tamper storm against a guarded tree, then the wait for quiescence.
 *
 * usage: storm DEST BACKUP [FILES [WRITES [SEED [TIMEOUT_S]]]]
 *
 * Picks FILES (default 10000) distinct regular files of DEST at random (fixed SEED,
 * default 1), then does WRITES (default 100000) overwrites as fast as it can: rounds of
 * one write to every picked file, each round in a fresh random order; one write is
 * open(O_WRONLY|O_TRUNC), write a web-shell line (numbered, so every write differs),
 * close. Then, from the moment the last close() returned, it re-reads the picked files
 * until every one equals BACKUP's copy again (or TIMEOUT_S, default 120, passes), and
 * finally compares all of them once more.
 *
 * Prints key=value lines: the wall-clock time of the last write (last_write_epoch,
 * for checks timed from outside), writes, write errors, write time and rate, quiescence time
 * (last write -> all picked files identical to BACKUP), misses (files still different
 * at the end) and passes. Exit 0 when there are no misses, 1 otherwise, 2 on usage or
 * set-up errors.
 *
 * Build: cc -O2 -Wall -o storm storm.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char **files;
static size_t nfiles, capfiles, dest_len;

static void die(const char *what)
{
    perror(what);
    exit(2);
}

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    if (nfiles == capfiles) {
        capfiles = capfiles ? capfiles * 2 : 4096;
        files = realloc(files, capfiles * sizeof *files);
        if (!files)
            die("realloc");
    }
    if (!(files[nfiles++] = strdup(path + dest_len + 1)))
        die("strdup");
    return 0;
}

static ssize_t slurp(const char *path, char **buf, size_t *cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        if (len == *cap) {
            *cap = *cap ? *cap * 2 : 65536;
            if (!(*buf = realloc(*buf, *cap)))
                die("realloc");
        }
        ssize_t r = read(fd, *buf + len, *cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    return (ssize_t)len;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void shuffle(char **v, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        size_t j = i + (size_t)(drand48() * (n - i));
        char *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

static char *a, *b;
static size_t acap, bcap;

/* 1 when DEST/rel equals BACKUP/rel byte for byte. */
static int same(const char *dest, const char *backup, const char *rel)
{
    char p[8192], q[8192];
    snprintf(p, sizeof p, "%.*s/%s", (int)dest_len, dest, rel);
    snprintf(q, sizeof q, "%s/%s", backup, rel);
    ssize_t lb = slurp(q, &b, &bcap);
    if (lb < 0)
        die(q);
    ssize_t la = slurp(p, &a, &acap);
    return la == lb && memcmp(a, b, (size_t)la) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: storm DEST BACKUP [FILES [WRITES [SEED [TIMEOUT_S]]]]\n");
        return 2;
    }
    const char *dest = argv[1], *backup = argv[2];
    size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 10000;
    size_t writes = argc > 4 ? strtoul(argv[4], NULL, 10) : 100000;
    long seed = argc > 5 ? strtol(argv[5], NULL, 10) : 1;
    double timeout = argc > 6 ? strtod(argv[6], NULL) : 120;

    dest_len = strlen(dest);
    while (dest_len > 1 && dest[dest_len - 1] == '/')
        dest_len--;
    if (nftw(dest, collect, 64, FTW_PHYS) != 0)
        die("nftw");
    if (nfiles < n) {
        fprintf(stderr, "only %zu files under %s\n", nfiles, dest);
        return 2;
    }
    srand48(seed);
    shuffle(files, nfiles); /* the first n are the pick */

    char **order = malloc(n * sizeof *order);
    if (!order)
        die("malloc");
    memcpy(order, files, n * sizeof *order);
    char path[8192], line[256];
    size_t done = 0, errors = 0;
    double t0 = now_s();
    while (done < writes) {
        shuffle(order, n);
        for (size_t i = 0; i < n && done < writes; i++, done++) {
            snprintf(path, sizeof path, "%.*s/%s", (int)dest_len, dest, order[i]);
            int len = snprintf(line, sizeof line,
                               "<?php /* storm write %zu */ system($_GET['c']); ?>\n", done);
            int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
            if (fd < 0) {
                errors++;
                continue;
            }
            if (write(fd, line, (size_t)len) != len)
                errors++;
            close(fd);
        }
    }
    double t_last = now_s();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    printf("last_write_epoch=%ld.%06ld\n", (long)wall.tv_sec, wall.tv_nsec / 1000);
    printf("files=%zu\nwrites=%zu\nwrite_errors=%zu\nwrite_s=%.3f\nwrites_per_s=%.0f\n", n, done,
           errors, t_last - t0, done / (t_last - t0));
    fflush(stdout);

    /* Quiescence: every picked file identical to BACKUP again. */
    char **pending = malloc(n * sizeof *pending);
    if (!pending)
        die("malloc");
    memcpy(pending, files, n * sizeof *pending);
    size_t left = n, passes = 0;
    double t_quiet = -1;
    while (left > 0) {
        size_t keep = 0;
        for (size_t i = 0; i < left; i++)
            if (!same(dest, backup, pending[i]))
                pending[keep++] = pending[i];
        left = keep;
        passes++;
        double t = now_s();
        if (left == 0) {
            t_quiet = t - t_last;
            break;
        }
        if (t - t_last > timeout)
            break;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    /* Final pass over all of them: nothing may have changed back. */
    size_t misses = 0;
    for (size_t i = 0; i < n; i++)
        if (!same(dest, backup, files[i])) {
            if (misses < 20)
                fprintf(stderr, "storm: still different: %s\n", files[i]);
            misses++;
        }
    if (t_quiet >= 0)
        printf("quiescence_s=%.3f\n", t_quiet);
    else
        printf("quiescence_s=timeout\n");
    printf("passes=%zu\nmisses=%zu\n", passes, misses);
    return misses ? 1 : 0;
}
