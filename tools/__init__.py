"""Small developer scripts (documentation generators); not part of the installed package."""
