// Not a test of the daemon: a library that makes one system call, on which
// cmake/CorePurity.cmake must fail (the ctest case
// unit.core_purity_check_fails_on_a_syscall).
#include <fcntl.h>

int TcpstatedPurityProbe(const char* path) { return open(path, O_RDONLY); }
