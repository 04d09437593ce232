#ifndef GITML_SYSTEM_SHIMS_H
#define GITML_SYSTEM_SHIMS_H
#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np, which glibc declares only under _GNU_SOURCE (not visible to Swift):
/// the child changes directory itself, so the parent's working directory never moves under other threads.
int gitml_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

#endif
