"""Local tooling (never imported by what runs in production): the local stack, provisioning
of its AWS endpoint, the example-data generator and the demo."""
