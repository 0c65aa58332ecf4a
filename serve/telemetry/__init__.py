"""aex-telemetry: traces (OpenTelemetry) and the one JSON log format."""
