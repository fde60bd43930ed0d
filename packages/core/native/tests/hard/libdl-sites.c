/* A dlopen'ed library with its own syscall site (number 100002 → -ENOSYS). */
long dl_sites_call(void)
{
	long r;
	__asm__ volatile("syscall" : "=a"(r) : "a"(100002L) : "rcx", "r11", "memory");
	return r;
}
