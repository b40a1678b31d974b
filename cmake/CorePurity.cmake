# Fails when the core library (tcpstated_core) uses a system call or a file
# API: the core is decoding, the mirror, the detectors and parsers of text
# the edge library reads, and must stay testable without a kernel.
#
# Run as `cmake -DNM=<nm> -DARCHIVE=<libtcpstated_core.a> -P CorePurity.cmake`
# (a POST_BUILD step of the target, with -DREMOVE_ON_FAILURE=ON so that a
# failed check cannot leave an up-to-date archive behind). It lists the symbols the archive's
# objects leave undefined and refuses those below. The list names libc's
# wrappers of the system calls the edges make (files, /proc, sockets,
# namespaces, BPF, memory maps, processes) and the C and C++ file APIs; a
# new edge call belongs in the edge library (CMakeLists.txt), not here.

cmake_minimum_required(VERSION 3.25)

set(FORBIDDEN_C
  # files and /proc
  open open64 openat openat64 creat creat64 close close_range read readv
  pread pread64 preadv write writev pwrite pwrite64 lseek lseek64 fsync
  stat stat64 fstat fstat64 lstat lstat64 fstatat fstatat64 statx newfstatat
  __xstat __xstat64 __fxstat __fxstat64 __lxstat __fxstatat
  access faccessat euidaccess readlink readlinkat opendir fdopendir readdir
  readdir64 closedir scandir mkdir mkdirat unlink unlinkat rename renameat
  truncate ftruncate dup dup2 dup3 pipe pipe2 fcntl fcntl64 ioctl
  fopen fopen64 fdopen freopen fread fwrite fgets getline getdelim fclose
  # sockets and polling
  socket socketpair bind listen accept accept4 connect shutdown send sendto
  sendmsg sendmmsg recv recvfrom recvmsg recvmmsg setsockopt getsockopt
  getsockname getpeername poll ppoll select pselect epoll_create
  epoll_create1 epoll_ctl epoll_wait epoll_pwait eventfd timerfd_create
  # namespaces, processes, privileges, BPF, memory maps
  setns unshare clone fork vfork execve execv execvp kill tgkill prctl
  capset capget setuid setgid setresuid setresgid syscall bpf
  mmap mmap64 munmap mprotect
  # password hashing
  crypt crypt_r
)
set(FORBIDDEN_CXX_PATTERNS
  basic_ifstream basic_ofstream basic_fstream basic_filebuf 10filesystem
)

execute_process(COMMAND "${NM}" --undefined-only --format=posix "${ARCHIVE}"
                OUTPUT_VARIABLE listing RESULT_VARIABLE status
                ERROR_VARIABLE errors)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "CorePurity: ${NM} failed on ${ARCHIVE}: ${errors}")
endif()

set(found "")
string(REPLACE "\n" ";" lines "${listing}")
foreach(line IN LISTS lines)
  # "symbol U" (posix format); archive member headers end with ':'.
  if(NOT line MATCHES "^([^ ]+) U")
    continue()
  endif()
  set(symbol "${CMAKE_MATCH_1}")
  string(REGEX REPLACE "@.*$" "" symbol "${symbol}")
  if(symbol IN_LIST FORBIDDEN_C)
    list(APPEND found "${symbol}")
    continue()
  endif()
  foreach(pattern IN LISTS FORBIDDEN_CXX_PATTERNS)
    string(FIND "${symbol}" "${pattern}" at)
    if(NOT at EQUAL -1)
      list(APPEND found "${symbol}")
      break()
    endif()
  endforeach()
endforeach()

if(found)
  list(REMOVE_DUPLICATES found)
  list(JOIN found ", " found_text)
  message(FATAL_ERROR
    "tcpstated_core must not make system calls or touch files, but it "
    "uses: ${found_text}. Move that code to tcpstated_edge (CMakeLists.txt) "
    "and pass the core what it read.")
  if(REMOVE_ON_FAILURE)
    # The archive is complete on disk: remove it so that the next build
    # relinks it and checks again instead of finding it up to date.
    file(REMOVE "${ARCHIVE}")
  endif()
endif()
