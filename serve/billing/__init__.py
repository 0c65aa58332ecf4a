"""Plans, verification-call metering, usage, invoices and revenue by stream."""
