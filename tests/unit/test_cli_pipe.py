"""A verb whose reader leaves early (``xaibench compare ... | head``) ends quietly, without a traceback."""
import subprocess
import sys

# A stand-in verb printing far more than a pipe holds, run through the real ``cli.main``.
_SCRIPT = """
import sys, types
from xaibench import cli
verb = types.ModuleType("long_verb")
verb.DESCRIPTION = "prints many lines"
verb.add_arguments = lambda parser: None
def run(args):
    for i in range(200_000):
        print(f"line {i}")
    return 0
verb.run = run
sys.modules["long_verb"] = verb
cli.VERBS["long"] = "long_verb"
cli.main(["long"])
"""


def test_a_verb_piped_into_a_reader_that_leaves_ends_without_a_traceback():
    process = subprocess.Popen([sys.executable, "-c", _SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # what `head -1` does after its line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert stderr == ""
