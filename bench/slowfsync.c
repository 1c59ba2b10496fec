/* slowfsync: an LD_PRELOAD shim that makes every sync to disk slower, and counts them.
 *
 *   cc -shared -fPIC -O2 -o slowfsync.so bench/slowfsync.c -ldl
 *   SLOWFSYNC_DELAY_MS=100 SLOWFSYNC_COUNTS=/tmp/counts LD_PRELOAD=./slowfsync.so prog
 *
 * fsync, fdatasync, sync_file_range and msync call the C library's own function and then
 * sleep SLOWFSYNC_DELAY_MS milliseconds (a decimal, e.g. 0.5; unset or 0: no delay), as a
 * slow eMMC or SD card would hold the caller. Only the calling thread sleeps.
 *
 * SLOWFSYNC_COUNTS names a file of at least 64 bytes (the shim extends a shorter one) that
 * the shim maps MAP_SHARED: eight little-endian uint64 counters, incremented atomically
 * after each call, readable by another process at any moment (no need to wait for exit):
 *
 *   [0] fsync  [1] fdatasync  [2] sync_file_range  [3] msync
 *   [4] nanoseconds slept in total  [5] processes that loaded the shim  [6..7] zero
 *
 * Used by bench/slowdisk.py, which compiles it at bench time with the system C compiler.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define N_COUNTERS 8
#define C_FSYNC 0
#define C_FDATASYNC 1
#define C_SYNC_FILE_RANGE 2
#define C_MSYNC 3
#define C_SLEPT_NS 4
#define C_LOADED 5

static uint64_t no_counters[N_COUNTERS];
static uint64_t *counters = no_counters;
static long long delay_ns;

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*real_msync)(void *, size_t, int);

__attribute__((constructor)) static void slowfsync_init(void) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_sync_file_range =
        (int (*)(int, off_t, off_t, unsigned int))dlsym(RTLD_NEXT, "sync_file_range");
    real_msync = (int (*)(void *, size_t, int))dlsym(RTLD_NEXT, "msync");

    const char *delay = getenv("SLOWFSYNC_DELAY_MS");
    if (delay != NULL && *delay != '\0') {
        double ms = strtod(delay, NULL);
        if (ms > 0) delay_ns = (long long)(ms * 1e6);
    }
    const char *path = getenv("SLOWFSYNC_COUNTS");
    if (path != NULL && *path != '\0') {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            struct stat st;
            size_t size = N_COUNTERS * sizeof(uint64_t);
            if (fstat(fd, &st) == 0 && (size_t)st.st_size < size) {
                if (ftruncate(fd, (off_t)size) != 0) size = 0;
            }
            if (size != 0) {
                void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (map != MAP_FAILED) counters = (uint64_t *)map;
            }
            close(fd);
        }
    }
    __atomic_fetch_add(&counters[C_LOADED], 1, __ATOMIC_RELAXED);
}

static void slow_down(int which) {
    int saved = errno;
    __atomic_fetch_add(&counters[which], 1, __ATOMIC_RELAXED);
    if (delay_ns > 0) {
        struct timespec left = {(time_t)(delay_ns / 1000000000LL), (long)(delay_ns % 1000000000LL)};
        while (nanosleep(&left, &left) != 0 && errno == EINTR) {
        }
        __atomic_fetch_add(&counters[C_SLEPT_NS], (uint64_t)delay_ns, __ATOMIC_RELAXED);
    }
    errno = saved; /* the caller sees the real call's errno */
}

int fsync(int fd) {
    int rc = real_fsync ? real_fsync(fd) : (errno = ENOSYS, -1);
    slow_down(C_FSYNC);
    return rc;
}

int fdatasync(int fd) {
    int rc = real_fdatasync ? real_fdatasync(fd) : (errno = ENOSYS, -1);
    slow_down(C_FDATASYNC);
    return rc;
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags) {
    int rc = real_sync_file_range ? real_sync_file_range(fd, offset, nbytes, flags)
                                  : (errno = ENOSYS, -1);
    slow_down(C_SYNC_FILE_RANGE);
    return rc;
}

int msync(void *addr, size_t length, int flags) {
    int rc = real_msync ? real_msync(addr, length, flags) : (errno = ENOSYS, -1);
    slow_down(C_MSYNC);
    return rc;
}
