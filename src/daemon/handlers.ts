// One handler per request type. Each returns the result payload or throws a DwError; the server
// turns either into exactly one frame for the request's id.
import { createHash } from 'node:crypto';
import { DwError } from '../protocol/errors.js';
import type { ResultMap, RunResult } from '../protocol/messages.js';
import { PROTOCOL_VERSION, PACKAGE_VERSION } from '../protocol/version.js';
import { loadPlan } from '../workflow/loader.js';
import type { Plan } from '../workflow/plan.js';
import type { HandlerTable, Connection } from './server.js';
import type { Daemon } from './daemon.js';

function optionsDigest(session: Plan['steps'][number]['session']): string {
  const canonical = JSON.stringify([session.providers, session.intra_op_threads ?? 0, session.graph_optimization ?? 'all']);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 8);
}

/** Cache identity: the file's sha256, plus the session options for onnx models. */
async function assignKeys(plan: Plan, d: Daemon): Promise<void> {
  for (const step of plan.steps) {
    for (const model of step.models) {
      const sha = await d.hasher.sha256(model.path);
      model.key = model.kind === 'onnx' ? `${sha}:${optionsDigest(step.session)}` : sha;
    }
  }
}

export function runId(conn: Connection, id: string | number): string {
  return `${conn.id}:${id}`;
}

export function createHandlers(d: Daemon): HandlerTable {
  return {
    hello: async (req, conn) => {
      const mine: ResultMap['hello'] = { protocol: PROTOCOL_VERSION, version: PACKAGE_VERSION, pid: process.pid, autostarted: d.autostarted };
      if (req.protocol !== PROTOCOL_VERSION || req.version !== PACKAGE_VERSION) {
        throw new DwError(
          'DW_ERR_VERSION_MISMATCH',
          `the running dwd is version ${PACKAGE_VERSION} (protocol ${PROTOCOL_VERSION}) but this dw is ${req.version} (protocol ${req.protocol})`,
          { daemon: mine, client: { version: req.version, protocol: req.protocol } },
        );
      }
      conn.helloDone = true;
      return mine;
    },

    run: async (req, conn): Promise<RunResult> => {
      if (d.shuttingDown) throw new DwError('DW_ERR_SHUTTING_DOWN', 'dwd is shutting down and takes no new runs');
      const t0 = performance.now();
      const plan = await loadPlan(req.workflow, req.args, req.cwd);
      await assignKeys(plan, d);
      const id = runId(conn, req.id);
      if (conn.runs.has(id)) throw new DwError('DW_ERR_PROTOCOL', `request id ${JSON.stringify(req.id)} is already running on this connection`);
      // The client may have gone while the plan was being checked: do not start a run nobody awaits.
      if (conn.closed) throw new DwError('DW_ERR_CANCELLED', 'the client disconnected');
      conn.runs.add(id);
      try {
        const r = await d.scheduler.submit({ id, plan, timeout_ms: req.timeout_ms ?? d.config.timeout_ms, emit: (e) => conn.event(req.id, e) });
        d.log.info({ run: id, workflow: plan.workflow.path, load_ms: r.load_ms, run_ms: r.run_ms, queue_ms: r.queue_ms }, 'run done');
        return {
          ok: true,
          workflow: plan.workflow,
          results: r.results,
          models: r.models,
          outputs: r.outputs,
          timings: { total_ms: Math.round(performance.now() - t0), queue_ms: r.queue_ms, load_ms: r.load_ms, run_ms: r.run_ms },
        };
      } catch (err) {
        d.log.info({ run: id, workflow: plan.workflow.path, code: (err as DwError).code, err: (err as Error).message }, 'run failed');
        throw err;
      } finally {
        conn.runs.delete(id);
      }
    },

    validate: async (req) => {
      const plan = await loadPlan(req.workflow, req.args ?? {}, req.cwd ?? '/');
      return {
        ok: true,
        workflow: plan.workflow,
        steps: plan.steps.map((s) => ({ name: s.name, kind: s.kind, type: s.type })),
        variables: plan.variables,
        models: plan.steps.flatMap((s) => s.models.map((m) => ({ step: s.name, role: m.role, path: m.path }))),
      } satisfies ResultMap['validate'];
    },

    status: async () => {
      const snap = await d.supervisor.snapshot();
      return {
        pid: process.pid,
        version: PACKAGE_VERSION,
        protocol: PROTOCOL_VERSION,
        uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
        socket: d.socket,
        runs_total: d.scheduler.runsTotal,
        runs_active: d.scheduler.running,
        runs_queued: d.scheduler.queued,
        runner: d.supervisor.status(),
        models_loaded: snap?.models.length ?? 0,
        settings: { ...d.config },
      } satisfies ResultMap['status'];
    },

    stop: async () => {
      // Answer first, then stop: the client learns the request was taken before the socket closes.
      setImmediate(() => void d.shutdown('stop request'));
      return { stopping: true as const, pid: process.pid };
    },

    cancel: async (req, conn) => {
      const id = runId(conn, req.target);
      const cancelled = conn.runs.has(id) && d.scheduler.abort(id, new DwError('DW_ERR_CANCELLED', 'the run was cancelled by the client'));
      return { cancelled };
    },
  };
}
