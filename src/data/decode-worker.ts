// Entry point of a decode worker thread (started by DecodePool in decode.ts): receives
// { id, task } messages, runs them with runTask(), and replies { id, ok, result | error }.
// Decoded pixels are transferred, not copied. { close: true } makes the thread finish the
// tasks it is running and exit.
import { parentPort } from 'node:worker_threads';
import { ImagerateDataError } from './dataset.js';
import { closePackFds, loadSharp, runTask, type Task, type WorkerReply } from './decode.js';

if (parentPort) {
  const port = parentPort;
  let running = 0;
  let closing = false;
  const maybeExit = (): void => {
    if (closing && running === 0) {
      closePackFds();
      port.close();
    }
  };
  // sharp decodes on libuv's pool; one libvips thread per image, the parallelism comes from
  // running several images (and several workers) at once.
  void loadSharp().then((s) => s.concurrency(1), () => undefined);
  port.on('message', (m: { id: number; task: Task } | { close: true }) => {
    if ('close' in m) {
      closing = true;
      maybeExit();
      return;
    }
    running++;
    runTask(m.task).then(
      (result) => {
        const transfer = 'data' in result ? [result.data.buffer as ArrayBuffer] : [];
        port.postMessage({ id: m.id, ok: true, result } satisfies WorkerReply, transfer);
      },
      (e: unknown) => {
        const err = e as Error;
        const reply: WorkerReply = {
          id: m.id, ok: false,
          error: {
            message: err?.message ?? String(e),
            ...(e instanceof ImagerateDataError ? { dataError: { file: e.file, problem: e.problem } } : {}),
          },
        };
        port.postMessage(reply);
      },
    ).finally(() => {
      running--;
      maybeExit();
    });
  });
}
