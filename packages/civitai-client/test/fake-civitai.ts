import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** What the fake answers to one request: a status with a body, a delay, or a dropped connection. */
type FakeReply =
  | { status: number; json?: unknown; text?: string; headers?: Record<string, string>; delayMs?: number }
  | { destroy: true };

export type FakeHandler = (req: RecordedRequest, index: number) => FakeReply;

/**
 * A stand-in for the CivitAI API on 127.0.0.1 (port chosen by the OS). Each test scripts the
 * replies; every request is recorded for assertions on paths, headers and bodies.
 */
export async function startFakeCivitai(handler: FakeHandler): Promise<{ baseUrl: string; requests: RecordedRequest[]; close(): Promise<void>; server: Server }> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const recorded: RecordedRequest = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body };
      requests.push(recorded);
      const reply = handler(recorded, requests.length - 1);
      if ("destroy" in reply) {
        req.socket.destroy();
        return;
      }
      const send = () => {
        if (res.destroyed) return;
        const payload = reply.text ?? (reply.json === undefined ? "" : JSON.stringify(reply.json));
        res.writeHead(reply.status, { "content-type": reply.text === undefined ? "application/json; charset=utf-8" : "text/plain", ...reply.headers });
        res.end(payload);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
