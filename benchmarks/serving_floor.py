"""The HTTP floor of the serving benchmark: the same server stack answering without scoring.

``python -m benchmarks.serving_floor --port N`` serves ``POST /models/{model}/predict`` with
uvicorn, one worker, as ``python -m modelops.serving`` does: it reads the body, parses it with the
same functions (orjson, records and their shape) and answers a small JSON body, with no model,
validation of features, guard or capture. What a request costs below this is the server's own
(uvicorn, FastAPI routing, the event loop), so it bounds what any scoring path can reach.
Benchmark-side only: not part of the product.
"""

from __future__ import annotations

import argparse

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from modelops.serving.validation import parse_json_body, records_of_body

app = FastAPI()


@app.post("/models/{model}/predict")
async def predict(model: str, request: Request) -> Response:
    body = parse_json_body(await request.body(), request.headers.get("content-type"))
    records, _ = records_of_body(body, 1000)
    return Response(orjson.dumps({"model": model, "predictions": [0] * len(records)}), media_type="application/json")


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


def main() -> None:
    import uvicorn

    from modelops.serving.__main__ import log_config

    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving_floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    uvicorn.run(
        app, host=args.host, port=args.port, workers=1, log_level=args.log_level, log_config=log_config(args.log_level)
    )


if __name__ == "__main__":
    main()
