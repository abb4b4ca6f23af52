"""Lifecycle connector: shared MQL/SQL criteria, executed against HubSpot and Salesforce."""

__version__ = "0.1.0"
