"""Route handlers: thin (load → core → persist → respond happens in serve/services.py and
serve/wallets.py); who may call a route is a dependency named after the caller it requires."""
