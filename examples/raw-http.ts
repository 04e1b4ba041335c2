/**
 * A deployment that speaks HTTP itself: defining handleHttp(req) hands it every request under its route
 * prefix (method, path, query, headers, body), the way the OpenAI and TGI endpoints are served.
 * An async-generator handleHttp yields a response head first, then raw chunks (here: server-sent events).
 *
 *   serve run examples/raw-http.ts:app
 *   curl -s localhost:8000/hello?name=ada
 *   curl -sN localhost:8000/countdown?from=3
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { deployment, type HttpRequestLike, type HttpResponseLike } from '@flotilla/core';

@deployment({ placement: 'thread' })
export class Countdown {
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpResponseLike | string> {
    if (req.path === '/hello') {
      yield { status: 200, body: { hello: req.query.name ?? 'world', requestId: req.requestId } };
      return;
    }
    if (req.path !== '/countdown') {
      yield {
        status: 404,
        body: { error: { code: 'NOT_FOUND', message: `no route ${req.path}; try /hello or /countdown` } },
      };
      return;
    }
    yield { status: 200, headers: { 'content-type': 'text/event-stream' } };
    for (let i = Number(req.query.from ?? 5); i >= 0; i--) {
      yield `data: ${JSON.stringify({ remaining: i })}\n\n`;
      await sleep(200);
    }
    yield 'data: [DONE]\n\n';
  }
}

export const app = Countdown.bind();
