"""`crm-sandbox serve`: the OKKI, Twenty and Jiandaoyun emulators on loopback ports."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from crm_sandbox.control import READY_LINE
from crm_sandbox.jiandaoyun import JiandaoyunSandbox
from crm_sandbox.okki import OkkiSandbox
from crm_sandbox.runtime import Knobs, build_app
from crm_sandbox.server import bind, serve_all
from crm_sandbox.twenty import TwentySandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the three emulators and run until stopped")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--okki-port", type=int, default=0, help="0 = a free port")
    serve.add_argument("--twenty-port", type=int, default=0)
    serve.add_argument("--jiandaoyun-port", type=int, default=0)
    serve.add_argument("--companies", type=int, default=200, help="OKKI companies to generate")
    serve.add_argument("--seed", type=int, default=7, help="seed of the data and fault generators")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to each call")
    serve.add_argument("--latency-jitter", type=float, default=0.0)
    serve.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered 5xx")
    serve.add_argument("--drop-rate", type=float, default=0.0, help="share of responses dropped")
    serve.add_argument("--burst-429-rate", type=float, default=0.0)
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="divide rate-limit windows by this (60 = Twenty's 100/min becomes 100/s)",
    )
    serve.add_argument(
        "--okki-shape-variety",
        type=float,
        default=0.0,
        help="share of OKKI's open fields served in other shapes (knob shape_variety, 0..1)",
    )
    serve.add_argument("--jiandaoyun-forms", type=Path, help="JSON file of form definitions")
    serve.add_argument("--urls-file", type=Path, help="also write the URLs and credentials here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)

    def knobs() -> Knobs:
        return Knobs(
            latency=args.latency,
            latency_jitter=args.latency_jitter,
            error_rate=args.error_rate,
            drop_rate=args.drop_rate,
            burst_429_rate=args.burst_429_rate,
            time_scale=args.time_scale,
        )

    def okki_knobs() -> Knobs:
        okki = knobs()
        okki.extra["shape_variety"] = args.okki_shape_variety
        return okki

    sandboxes = {
        "okki": (
            OkkiSandbox(seed=args.seed, companies=args.companies, knobs=okki_knobs()),
            args.okki_port,
        ),
        "twenty": (TwentySandbox(seed=args.seed, knobs=knobs()), args.twenty_port),
        "jiandaoyun": (
            JiandaoyunSandbox(seed=args.seed, knobs=knobs(), forms_file=args.jiandaoyun_forms),
            args.jiandaoyun_port,
        ),
    }
    listeners = [
        bind(name, build_app(sb, sb.api_routes()), args.host, port)
        for name, (sb, port) in sandboxes.items()
    ]
    summary = {
        lis.name: {"base_url": lis.url, **sandboxes[lis.name][0].demo_credentials()}
        for lis in listeners
    }

    def on_ready() -> None:
        for name, info in summary.items():
            creds = " ".join(f"{k}={v}" for k, v in info.items() if k != "base_url")
            print(f"{name:<11} {info['base_url']:<24} {creds}")
        if args.urls_file:
            args.urls_file.write_text(json.dumps(summary, indent=2))
        print(READY_LINE, flush=True)

    try:
        asyncio.run(serve_all(listeners, on_ready))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
