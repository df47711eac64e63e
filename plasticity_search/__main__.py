"""``python -m plasticity_search`` and the ``plasticity-search`` script: the command line of :mod:`.cli`, with a
Ctrl-C while it loads reported like one later ("interrupted", exit 130) instead of a traceback."""
import sys


def main() -> int:
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        print("plasticity-search: interrupted", file=sys.stderr)
        return 130
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
