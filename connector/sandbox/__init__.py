"""Local emulators of the CRM APIs with demo data: used by `connector demo`, the tests and bench/."""
