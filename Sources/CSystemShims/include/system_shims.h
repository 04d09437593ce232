#ifndef GITML_SYSTEM_SHIMS_H
#define GITML_SYSTEM_SHIMS_H
#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np, which glibc declares only under _GNU_SOURCE (not visible to Swift):
/// the child changes directory itself, so the parent's working directory never moves under other threads.
int gitml_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34): the child closes every descriptor from `from` up, so it
/// inherits none of ours that were opened without close-on-exec (a listening socket, an event loop's).
int gitml_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// openat2(2) with `resolve` flags (RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS), which libc does not
/// wrap: returns the descriptor, or -1 with errno (ENOSYS where the kernel predates Linux 5.6).
int gitml_openat2(int dirfd, const char *path, int flags, unsigned int mode, unsigned long long resolve);

/// pipe2(fds, O_CLOEXEC): a pipe no other child inherits (glibc declares pipe2 only under _GNU_SOURCE).
int gitml_pipe_cloexec(int fds[2]);

/// Makes `destination` share `source`'s blocks (FICLONE, a reflink) where the file system can: 0, else -1 with errno.
int gitml_clone_file(int destination, int source);

/// copy_file_range(2) from the current offsets: bytes copied, 0 at the end, -1 with errno.
long gitml_copy_file_range(int source, int destination, unsigned long length);

/// Starts writing `length` bytes at `offset` of `fd` back to disk without waiting (sync_file_range with
/// SYNC_FILE_RANGE_WRITE), so a later fsync has little left to do: 0, else -1 with errno.
int gitml_start_writeback(int fd, long long offset, long long length);

/// Returns memory freed in every malloc arena to the system (glibc's malloc_trim(0)).
void gitml_release_free_memory(void);

/// O_PATH (a descriptor that only names a place), which glibc shows only under _GNU_SOURCE.
extern const int GITML_O_PATH;

/// The resolve flags, as numbers Swift can read.
extern const unsigned long long GITML_RESOLVE_BENEATH;
extern const unsigned long long GITML_RESOLVE_NO_SYMLINKS;
extern const unsigned long long GITML_RESOLVE_NO_MAGICLINKS;

#endif
