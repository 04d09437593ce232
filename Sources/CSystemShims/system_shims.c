#define _GNU_SOURCE
#include <malloc.h>
#include <spawn.h>
#include "system_shims.h"

int gitml_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int gitml_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

#include <errno.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct gitml_open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};

const int GITML_O_PATH = O_PATH;

int gitml_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
const unsigned long long GITML_RESOLVE_NO_MAGICLINKS = 0x02;
const unsigned long long GITML_RESOLVE_NO_SYMLINKS = 0x04;
const unsigned long long GITML_RESOLVE_BENEATH = 0x08;

int gitml_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve) {
    struct gitml_open_how how = {(uint64_t)(unsigned int)flags, mode, resolve};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int gitml_clone_file(int destination, int source) { return ioctl(destination, FICLONE, source); }

long gitml_copy_file_range(int source, int destination, unsigned long length) {
    return (long)copy_file_range(source, NULL, destination, NULL, length, 0);
}

void gitml_release_free_memory(void) { malloc_trim(0); }

int gitml_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, (off_t)offset, (off_t)length, SYNC_FILE_RANGE_WRITE);
}
