"""The team stack on one machine: `pricecast stack up|status|down` (plan: what runs; procs: processes; run: up/down)."""
