/**
 * `sysi plugins uninstall NAME…`: @oclif/plugin-plugins' own command, taking the short names
 * `sysi plugins install` takes. Install maps a name through the CLI's `oclif.aliases`
 * (`punning` → `@sysi/punning`); plugin-plugins' uninstall does not (it knows only a plugin's
 * full name, or a `scope`/`pluginPrefix` naming scheme sysi does not use), so `sysi plugins
 * uninstall punning` said "punning is not installed". Here each short name becomes the plugin it
 * names when that plugin is installed or linked and no plugin has the short name itself; then
 * plugin-plugins does the rest, unchanged (its flags, aliases `unlink`/`remove`, messages).
 *
 * Registered under the same id as plugin-plugins' command: oclif runs the root plugin's command
 * when two plugins give one id.
 */
import { commands } from "@oclif/plugin-plugins";

const Base = commands["plugins:uninstall"];

/**
 * The names to uninstall: each argument that is a key of `aliases` becomes its target when
 * `installed` holds the target and not the argument itself; flags and every other name are
 * kept as given.
 */
export function uninstallNames(
  argv: readonly string[],
  aliases: Readonly<Record<string, string | null>>,
  installed: ReadonlySet<string>,
): string[] {
  return argv.map((a) => {
    if (a.startsWith("-") || installed.has(a) || !Object.hasOwn(aliases, a)) return a;
    const target = aliases[a];
    return typeof target === "string" && installed.has(target) ? target : a;
  });
}

export default class PluginsUninstall extends Base {
  override async run(): Promise<void> {
    const aliases = (this.config.pjson.oclif.aliases ?? {}) as Record<string, string | null>;
    const installed = new Set(
      this.config
        .getPluginsList()
        .filter((p) => p.type === "user" || p.type === "link")
        .map((p) => p.name),
    );
    this.argv = uninstallNames(this.argv, aliases, installed);
    return super.run();
  }
}
