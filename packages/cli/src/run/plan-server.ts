/**
 * The plan server: a unix stream socket the runtime asks when a module has no plan yet
 * (a program exec'd by the instrumented one, a dlopen'd library). Protocol (sysi.h):
 * request "PLAN <absolute path>\n", reply "OK\n" | "NONE\n" | "ERR <message>\n".
 */
import { rmSync } from "node:fs";
import type { Socket, UnixSocketListener } from "bun";

export type PlanAnswer = { ok: true } | { ok: false; none?: boolean; message: string };

export interface PlanServer {
  path: string;
  /** Requests answered, by outcome. */
  stats: { ok: number; none: number; err: number };
  stop(): void;
}

export function startPlanServer(path: string, plan: (modulePath: string) => Promise<PlanAnswer>): PlanServer {
  const stats = { ok: 0, none: 0, err: 0 };
  const inflight = new Map<string, Promise<PlanAnswer>>();
  const ask = (modulePath: string) => {
    let p = inflight.get(modulePath);
    if (p === undefined) {
      p = plan(modulePath).catch((e: unknown) => ({ ok: false, message: e instanceof Error ? e.message : String(e) }));
      inflight.set(modulePath, p);
      // Later requests for the same module hit the plan cache on disk; keep the map small.
      p.finally(() => inflight.delete(modulePath));
    }
    return p;
  };
  const buffers = new WeakMap<Socket<undefined>, string>();
  const listener: UnixSocketListener<undefined> = Bun.listen({
    unix: path,
    socket: {
      data(sock, data) {
        let buf = (buffers.get(sock) ?? "") + data.toString();
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const m = /^PLAN (\/.*)$/.exec(line);
          if (m === null) {
            stats.err++;
            sock.write("ERR bad request\n");
            continue;
          }
          ask(m[1] as string).then((a) => {
            if (a.ok) stats.ok++;
            else if (a.none) stats.none++;
            else stats.err++;
            sock.write(a.ok ? "OK\n" : a.none ? "NONE\n" : `ERR ${a.message.replace(/\n/g, " ")}\n`);
          });
        }
        buffers.set(sock, buf);
      },
    },
  });
  return {
    path,
    stats,
    stop() {
      listener.stop(true);
      rmSync(path, { force: true });
    },
  };
}
