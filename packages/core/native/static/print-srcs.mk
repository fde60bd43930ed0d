# Included after ../Makefile: prints libsysi's own source list (SRCS, ASMS), so that the static
# runtime is built from exactly the files libsysi.so is.
print-srcs:
	@echo $(SRCS) $(ASMS)
