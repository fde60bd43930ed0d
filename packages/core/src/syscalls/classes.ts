// GENERATED FILE, do not edit. Regenerate with: bun scripts/gen-trace-table.ts
// Source: /sys/kernel/tracing/events/syscalls (argument names and types) and the class rules of scripts/gen-trace-table.ts.

/** strace-style syscall classes (`-e trace=%file`), each the x86-64 names it holds. */
export const SYSCALL_CLASSES: Record<string, readonly string[]> = {
  file: "open stat lstat access execve truncate getcwd chdir rename mkdir rmdir creat link unlink symlink readlink chmod chown lchown mknod statfs chroot acct swapon swapoff setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr llistxattr removexattr lremovexattr fremovexattr inotify_add_watch openat mkdirat mknodat fchownat futimesat newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat utimensat fanotify_mark name_to_handle_at renameat2 execveat statx open_tree fspick openat2 faccessat2 mount_setattr".split(
    " ",
  ),
  desc: "read write open close fstat lseek mmap ioctl pread64 pwrite64 readv writev pipe dup dup2 sendfile socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt fcntl flock fsync fdatasync ftruncate getdents fchdir creat fchmod fchown fstatfs readahead fsetxattr fgetxattr flistxattr fremovexattr epoll_create getdents64 fadvise64 epoll_wait epoll_ctl mq_open inotify_init inotify_add_watch inotify_rm_watch openat mkdirat mknodat fchownat futimesat newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat splice tee sync_file_range vmsplice utimensat epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev perf_event_open recvmmsg fanotify_init fanotify_mark name_to_handle_at open_by_handle_at syncfs sendmmsg setns renameat2 memfd_create bpf execveat userfaultfd copy_file_range preadv2 pwritev2 statx io_uring_setup io_uring_enter io_uring_register open_tree fsopen fsconfig fsmount fspick pidfd_open close_range openat2 pidfd_getfd faccessat2 epoll_pwait2 mount_setattr quotactl_fd memfd_secret".split(
    " ",
  ),
  network:
    "socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt accept4 recvmmsg sendmmsg".split(
      " ",
    ),
  process:
    "clone fork vfork execve exit wait4 kill rt_sigqueueinfo tkill exit_group tgkill waitid unshare rt_tgsigqueueinfo seccomp execveat pidfd_send_signal pidfd_open clone3".split(
      " ",
    ),
  signal:
    "rt_sigaction rt_sigprocmask rt_sigreturn pause kill rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack tkill tgkill signalfd signalfd4 rt_tgsigqueueinfo pidfd_send_signal".split(
      " ",
    ),
  memory:
    "mmap mprotect munmap brk mremap msync mincore madvise shmat shmdt mlock munlock mlockall munlockall remap_file_pages mbind set_mempolicy get_mempolicy migrate_pages move_pages mlock2 pkey_mprotect process_madvise".split(
      " ",
    ),
  ipc: "shmget shmat shmctl semget semop semctl shmdt msgget msgsnd msgrcv msgctl semtimedop".split(" "),
  creds:
    "getuid getgid setuid setgid geteuid getegid setreuid setregid getgroups setgroups setresuid getresuid setresgid getresgid setfsuid setfsgid capget capset prctl".split(
      " ",
    ),
};
