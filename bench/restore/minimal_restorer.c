/*
 * minimal_restorer - the physical limit of a real-time restore on this machine: a
 * fanotify event in, a rename of a copy prepared in advance out, nothing else. It is a
 * yardstick for bench/restore/run.sh, measured with the same driver (restore_latency)
 * as `mamori agent` and the inotifywait script; it is not a guard.
 *
 * usage: minimal_restorer DEST BACKUP PREPARED
 *
 *   DEST      the guarded tree (a copy of BACKUP)
 *   BACKUP    where the original bytes come from
 *   PREPARED  an empty directory on DEST's filesystem (rename cannot cross one)
 *
 * At start it marks every directory of DEST (inode marks with FAN_EVENT_ON_CHILD, so
 * other workers' writes elsewhere on the filesystem are never queued to it) for
 * FAN_MODIFY and FAN_CLOSE_WRITE, and writes a copy of every regular file of BACKUP
 * into PREPARED, with BACKUP's mode, owner and mtime. Then prints "ready" on stdout.
 *
 * Per event: the directory's handle and the name (FAN_REPORT_DFID_NAME) find the file
 * in a hash table, which holds the directory's O_PATH descriptor; one renameat() puts
 * the prepared copy over the name. Then, after the rename, a new copy is prepared for
 * the next tamper and its file handle recorded: the event's own FID record
 * (FAN_REPORT_FID) names the inode it is about, and an event about an inode that is no
 * longer at the path (the tampered inode the rename detached, which its writer may
 * still write into and close) is skipped without a system call.
 *
 * What it leaves out, on purpose (every one of these is something mamori does): no
 * baseline comparison (any write is a tamper), no who-data, no event, no evidence, no
 * other names of a hard-linked file (a write through one name leaves the others
 * tampered), no new files or directories, no deletes, renames or metadata changes, no
 * overflow handling, no durability (no fsync), no hash check of the prepared copy.
 *
 * Build: cc -O2 -Wall -o minimal_restorer minimal_restorer.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define HANDLE_MAX 128 /* MAX_HANDLE_SZ */

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* ------------------------------------------------------------------ hash tables */

/* FNV-1a over the key's bytes. */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

struct dir {
    int fd;                    /* O_PATH, for renameat */
    unsigned char handle[HANDLE_MAX];
    unsigned hlen;             /* handle_type + f_handle bytes, as fanotify reports them */
    char *rel;                 /* relative to DEST ("" for DEST itself) */
};

struct file {
    size_t dir;                /* index into dirs */
    char *name;
    char *rel;
    unsigned char handle[HANDLE_MAX]; /* the inode now at the path */
    unsigned hlen;
    int prepared;              /* a copy waits in PREPARED */
};

static struct dir *dirs;
static size_t ndirs, capdirs;
static struct file *files;
static size_t nfiles, capfiles;
static size_t *dir_slots, *file_slots; /* open addressing: index + 1, 0 = empty */
static size_t dir_mask, file_mask;

static uint64_t file_key(size_t dir, const char *name)
{
    return hash_bytes(name, strlen(name), hash_bytes(&dir, sizeof dir, 1469598103934665603ULL));
}

static size_t table_size(size_t n)
{
    size_t s = 1024;
    while (s < 2 * n)
        s *= 2;
    return s;
}

static void index_all(void)
{
    dir_mask = table_size(ndirs) - 1;
    file_mask = table_size(nfiles) - 1;
    dir_slots = calloc(dir_mask + 1, sizeof *dir_slots);
    file_slots = calloc(file_mask + 1, sizeof *file_slots);
    if (!dir_slots || !file_slots)
        die("calloc");
    for (size_t i = 0; i < ndirs; i++) {
        size_t s = hash_bytes(dirs[i].handle, dirs[i].hlen, 1469598103934665603ULL) & dir_mask;
        while (dir_slots[s])
            s = (s + 1) & dir_mask;
        dir_slots[s] = i + 1;
    }
    for (size_t i = 0; i < nfiles; i++) {
        size_t s = file_key(files[i].dir, files[i].name) & file_mask;
        while (file_slots[s])
            s = (s + 1) & file_mask;
        file_slots[s] = i + 1;
    }
}

static struct dir *find_dir(const unsigned char *h, unsigned hlen)
{
    for (size_t s = hash_bytes(h, hlen, 1469598103934665603ULL) & dir_mask; dir_slots[s];
         s = (s + 1) & dir_mask) {
        struct dir *d = &dirs[dir_slots[s] - 1];
        if (d->hlen == hlen && memcmp(d->handle, h, hlen) == 0)
            return d;
    }
    return NULL;
}

static struct file *find_file(size_t dir, const char *name)
{
    for (size_t s = file_key(dir, name) & file_mask; file_slots[s]; s = (s + 1) & file_mask) {
        struct file *f = &files[file_slots[s] - 1];
        if (f->dir == dir && strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

/* ------------------------------------------------------------------ set-up */

static const char *dest, *backup, *prepared;
static size_t dest_len;
static int fan, prep_fd;

/* The handle of `name` in `dirfd` as fanotify reports it: handle_type, then f_handle. */
static unsigned handle_of(int dirfd, const char *name, int flags, unsigned char *out)
{
    struct {
        struct file_handle fh;
        unsigned char bytes[HANDLE_MAX];
    } h;
    int mount_id;
    h.fh.handle_bytes = HANDLE_MAX;
    if (name_to_handle_at(dirfd, name, &h.fh, &mount_id, flags) != 0)
        return 0;
    memcpy(out, &h.fh.handle_type, sizeof h.fh.handle_type);
    memcpy(out + sizeof h.fh.handle_type, h.fh.f_handle, h.fh.handle_bytes);
    return (unsigned)sizeof h.fh.handle_type + h.fh.handle_bytes;
}

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    const char *rel = path[dest_len] ? path + dest_len + 1 : "";
    if (type == FTW_D) {
        if (ndirs == capdirs) {
            capdirs = capdirs ? capdirs * 2 : 1024;
            if (!(dirs = realloc(dirs, capdirs * sizeof *dirs)))
                die("realloc");
        }
        struct dir *d = &dirs[ndirs];
        if ((d->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            die(path);
        if (!(d->hlen = handle_of(d->fd, "", AT_EMPTY_PATH, d->handle)))
            die("name_to_handle_at (directory)");
        if (!(d->rel = strdup(rel)))
            die("strdup");
        /* By path: fanotify_mark() takes no O_PATH descriptor. */
        if (fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD,
                          AT_FDCWD, path) != 0)
            die("fanotify_mark");
        ndirs++;
        return 0;
    }
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    /* nftw visits a directory before what it holds: its entry is the last one added
       whose rel is this file's directory. */
    const char *slash = strrchr(rel, '/');
    size_t dlen = slash ? (size_t)(slash - rel) : 0;
    size_t di = ndirs;
    while (di-- > 0)
        if (strlen(dirs[di].rel) == dlen && strncmp(dirs[di].rel, rel, dlen) == 0)
            break;
    if (di == (size_t)-1)
        return 0;
    if (nfiles == capfiles) {
        capfiles = capfiles ? capfiles * 2 : 4096;
        if (!(files = realloc(files, capfiles * sizeof *files)))
            die("realloc");
    }
    struct file *f = &files[nfiles++];
    f->dir = di;
    if (!(f->rel = strdup(rel)) || !(f->name = strdup(slash ? slash + 1 : rel)))
        die("strdup");
    f->hlen = handle_of(dirs[di].fd, f->name, 0, f->handle);
    f->prepared = 0;
    return 0;
}

/* Writes a copy of BACKUP/rel as PREPARED/<index>, with BACKUP's mode, owner and mtime. */
static void prepare(size_t i)
{
    struct file *f = &files[i];
    char src[8192], name[32];
    snprintf(src, sizeof src, "%s/%s", backup, f->rel);
    snprintf(name, sizeof name, "%zu", i);
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return; /* not in the backup: never restored */
    struct stat st;
    if (fstat(in, &st) != 0)
        die("fstat");
    unlinkat(prep_fd, name, 0);
    int out = openat(prep_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        die("create prepared copy");
    for (off_t left = st.st_size; left > 0;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n <= 0)
            die("copy_file_range");
        left -= n;
    }
    if (fchown(out, st.st_uid, st.st_gid) != 0 || fchmod(out, st.st_mode & 07777) != 0)
        die("fchown/fchmod");
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (futimens(out, times) != 0)
        die("futimens");
    close(out);
    close(in);
    f->prepared = 1;
}

/* ------------------------------------------------------------------ the loop */

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: minimal_restorer DEST BACKUP PREPARED\n");
        return 2;
    }
    dest = argv[1], backup = argv[2], prepared = argv[3];
    dest_len = strlen(dest);
    while (dest_len > 1 && dest[dest_len - 1] == '/')
        dest_len--;

    /* Blocking reads: the restorer sleeps in read() and the event wakes it directly. */
    fan = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_REPORT_DFID_NAME | FAN_REPORT_FID,
                        O_RDONLY | O_CLOEXEC);
    if (fan < 0)
        die("fanotify_init");
    if ((prep_fd = open(prepared, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        die(prepared);
    if (nftw(dest, collect, 64, FTW_PHYS) != 0)
        die("nftw");
    index_all();
    for (size_t i = 0; i < nfiles; i++)
        prepare(i);
    printf("ready: %zu directories marked, %zu copies prepared\n", ndirs, nfiles);
    fflush(stdout);

    static char buf[65536] __attribute__((aligned(8)));
    unsigned long restores = 0, skipped = 0;
    for (;;) {
        ssize_t n = read(fan, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read fanotify");
        }
        size_t again[256], nagain = 0; /* files to prepare anew, after the batch */
        for (size_t off = 0; off + sizeof(struct fanotify_event_metadata) <= (size_t)n;) {
            struct fanotify_event_metadata meta;
            memcpy(&meta, buf + off, sizeof meta);
            const char *p = buf + off + meta.metadata_len, *end = buf + off + meta.event_len;
            off += meta.event_len;
            if (meta.mask & FAN_Q_OVERFLOW)
                continue;
            struct dir *d = NULL;
            const char *name = NULL;
            const unsigned char *obj = NULL;
            unsigned objlen = 0;
            while (p + sizeof(struct fanotify_event_info_header) <= end) {
                struct fanotify_event_info_header hdr;
                memcpy(&hdr, p, sizeof hdr);
                if (hdr.len == 0)
                    break;
                const struct fanotify_event_info_fid *fid = (const void *)p;
                const struct file_handle *fh = (const void *)fid->handle;
                unsigned hlen = (unsigned)sizeof fh->handle_type + fh->handle_bytes;
                if (hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
                    d = find_dir((const unsigned char *)&fh->handle_type, hlen);
                    name = (const char *)fh->f_handle + fh->handle_bytes;
                } else if (hdr.info_type == FAN_EVENT_INFO_TYPE_FID) {
                    obj = (const unsigned char *)&fh->handle_type;
                    objlen = hlen;
                }
                p += hdr.len;
            }
            if (!d || !name)
                continue;
            struct file *f = find_file((size_t)(d - dirs), name);
            if (!f || !f->prepared)
                continue;
            /* An event about an inode that is not the one at the path any more: the
               tampered inode a rename already detached. */
            if (obj && (objlen != f->hlen || memcmp(obj, f->handle, objlen) != 0)) {
                skipped++;
                continue;
            }
            char pname[32];
            snprintf(pname, sizeof pname, "%zu", (size_t)(f - files));
            if (renameat(prep_fd, pname, d->fd, f->name) != 0) {
                perror("renameat");
                continue;
            }
            restores++;
            f->prepared = 0;
            f->hlen = handle_of(d->fd, f->name, 0, f->handle);
            if (nagain < sizeof again / sizeof *again)
                again[nagain++] = (size_t)(f - files);
        }
        for (size_t i = 0; i < nagain; i++)
            prepare(again[i]);
        if (restores % 100 == 0 && nagain)
            fprintf(stderr, "minimal_restorer: %lu restores, %lu events skipped\n", restores,
                    skipped);
    }
}
