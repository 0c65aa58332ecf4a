"""AEX, the Agent Exchange: the pure market core, the simulator and the CLI."""

__version__ = "0.1.0"
