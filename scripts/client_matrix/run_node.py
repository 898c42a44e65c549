"""Runs a Node.js smoke script against a simulator started here (run.sh's rows for npm clients).

    python run_node.py SCRIPT [NODE_MODULES]

Starts the simulator of every smoke script (`_common.threaded_server`) on a free port, runs
`node SCRIPT <port> <simulator's max server version>` with NODE_PATH=NODE_MODULES, and relays its output.
A script that ends without its RESULT line (a crash, a hang cut off after the timeout) gets one failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from _common import threaded_server

from ibot.sim import versions

TIMEOUT = 240.0  # seconds for the whole node script


def main() -> int:
    script = sys.argv[1]
    env = dict(os.environ)
    if len(sys.argv) > 2:
        env["NODE_PATH"] = sys.argv[2]
    result = None
    with threaded_server() as server:
        cmd = ["node", script, str(server.port), str(versions.MAX_CLIENT_VERSION)]
        with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) as proc:
            killer = threading.Timer(TIMEOUT, proc.kill)  # a hung script: its output ends, then no RESULT
            killer.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    print(line, end="", flush=True)
                    if line.startswith("RESULT "):
                        result = line
                proc.wait()
            finally:
                killer.cancel()
    if result is None:
        print(f"FAIL session: {script} ended without a RESULT line (exit code {proc.returncode})")
        print("RESULT - 0 1", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
