#pragma once
// Whether anyone holds a file open for writing: a descriptor opened for writing, or a
// shared writable mapping (which keeps its file open for writing after the descriptor is
// closed, and whose writes raise no event at all).
//
// Asked of the kernel with a read lease (fcntl F_SETLEASE F_RDLCK), which it refuses
// with EAGAIN exactly when the inode is open for writing; granted, it is released at
// once. Needs CAP_LEASE or ownership of the file (the agent runs as root).
//
// The caller must ignore SIGIO: a writer that opens the file in the microseconds the
// lease is held makes the kernel send it (the lease-break signal), and its default
// action kills the process. The writer's open waits until the lease is released.

#include <string_view>

#include "core/base/result.h"

namespace mamori::fs {

// `rel` beneath `root_fd`. Fails when the file cannot be opened or the filesystem has no
// leases (EINVAL, ENOLCK): then the answer is unknown.
Result<bool> open_for_writing(int root_fd, std::string_view rel);

}  // namespace mamori::fs
