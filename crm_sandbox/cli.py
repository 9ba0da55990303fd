"""`crm-sandbox serve`: the OKKI, Twenty and Jiandaoyun emulators on loopback ports.

Served beyond loopback (`--host 0.0.0.0`), anyone who reaches the machine can use them: the
command says so loudly, and its control routes (`/_sandbox/…`: every stored record, the keys it
accepts, reset) then need a control token, given with `--control-token` or made up and printed.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import secrets
import sys
from pathlib import Path

from crm_sandbox.control import READY_LINE
from crm_sandbox.jiandaoyun import JiandaoyunSandbox
from crm_sandbox.okki import OkkiSandbox
from crm_sandbox.runtime import CONTROL_TOKEN_HEADER, Knobs, build_app
from crm_sandbox.server import bind, serve_all
from crm_sandbox.twenty import TwentySandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the three emulators and run until stopped")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--control-token",
        help=f"require this value in the {CONTROL_TOKEN_HEADER} header of every /_sandbox/ call "
        "(default: none on loopback, a random one otherwise)",
    )
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
    token = args.control_token
    if not _is_loopback(args.host):
        token = token or secrets.token_urlsafe(24)
        print(_exposed_warning(args.host), file=sys.stderr, flush=True)
    listeners = [
        bind(name, build_app(sb, sb.api_routes(), token), args.host, port)
        for name, (sb, port) in sandboxes.items()
    ]
    summary = {
        lis.name: {"base_url": lis.url, **sandboxes[lis.name][0].demo_credentials()}
        for lis in listeners
    }
    if token:
        for info in summary.values():
            info["control_token"] = token

    def on_ready() -> None:
        for name, info in summary.items():
            creds = " ".join(f"{k}={v}" for k, v in info.items() if k not in NOT_CREDENTIALS)
            print(f"{name:<11} {info['base_url']:<24} {creds}")
        if token:
            print(f"control     {CONTROL_TOKEN_HEADER}: {token}")
        if args.urls_file:
            args.urls_file.write_text(json.dumps(summary, indent=2))
        print(READY_LINE, flush=True)

    try:
        asyncio.run(serve_all(listeners, on_ready))
    except KeyboardInterrupt:
        sys.exit(0)


NOT_CREDENTIALS = ("base_url", "control_token")


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def _exposed_warning(host: str) -> str:
    line = "!" * 78
    return (
        f"{line}\n"
        f"WARNING: crm-sandbox is listening on {host}, not on loopback only. Anyone who can\n"
        "reach this machine can call the emulated APIs with the demo credentials below.\n"
        f"The /_sandbox/ control routes (all records, accepted keys, reset) now need the\n"
        f"header {CONTROL_TOKEN_HEADER}: <the token printed below>. Serve on 127.0.0.1\n"
        "unless another machine must reach it.\n"
        f"{line}"
    )


if __name__ == "__main__":
    main()
