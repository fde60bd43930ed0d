/* init.c — the ud2 strategy's ops table: init, prepare_site (records the site), ready. */
#include <errno.h>
#include <signal.h>
#include "ud2.h"

const struct sysi_runtime_api *sysi_ud2_api;
uint32_t sysi_ud2_id;
static int claimed[NSIG]; /* by signal: hlt and int4 share SIGSEGV */
const int sysi_ud2_variant_signal[SYSI_UD2_NVARIANTS] = { SIGILL, SIGTRAP, SIGSEGV, SIGSEGV };

static int ud2_init(const struct sysi_runtime_api *api, uint32_t id)
{
	if (api->abi_version != SYSI_ABI_VERSION)
		return -EINVAL;
	sysi_ud2_api = api;
	sysi_ud2_id = id;
	sysi_ud2_resume_setup();
	if (api->watch_context) /* signals at a gadget's syscall see the site (handler.c) */
		api->watch_context(sysi_ud2_context);
	return 0;
}

static int ud2_prepare_site(const struct sysi_site *site)
{
	uint64_t v = site->aux[0];
	if (v >= SYSI_UD2_NVARIANTS || site->patch_addr != site->addr || site->patch_len != 2)
		return -EINVAL;
	if (!claimed[sysi_ud2_variant_signal[v]]) {
		if (sysi_ud2_api->claim_signal(sysi_ud2_variant_signal[v], sysi_ud2_trap) < 0)
			return -EPERM;
		claimed[sysi_ud2_variant_signal[v]] = 1;
	}
	return sysi_ud2_add_site(site->addr, (uint32_t)v) < 0 ? -ENOMEM : 0;
}

static void ud2_ready(void)
{
	sysi_ud2_seal();
}

static const struct sysi_strategy_ops ops = {
	.abi_version = SYSI_ABI_VERSION,
	.name = "ud2",
	.init = ud2_init,
	.prepare_site = ud2_prepare_site,
	.ready = ud2_ready,
	.atfork_child = 0,
};

__attribute__((visibility("default"))) const struct sysi_strategy_ops *sysi_ud2_entry(void)
{
	return &ops;
}
