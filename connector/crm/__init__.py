"""CRM adapters: the only package that imports vendor SDKs."""
