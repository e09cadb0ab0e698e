"""The sandbox: a deterministic world of one company, served over each system's real protocol.

The world (files and databases; servers live beside it):
- `world.World(WorldConfig(seed, people, start, days, ...))`: records of every source, generated
  on demand; `entries(source, start)`/`records(source, start)` in creation-time order,
  `entry(source, index)`, `created_at(source, index)`, `advance_day() -> ChangeReport`,
  `fingerprint()`.
- `ground_truth.ground_truth(world)`: users, stored keys, rejects with reasons, winning names
  (GHL > Whop > Sheet), revenue per source/currency/status.
- `spreadsheets.spreadsheets(world)` / `spreadsheet_metas(world)`: sheet rows as the Sheets
  values API returns them.
- `elective_files.write_elective_exports(world, folder)`: the Elective drop folder.
- `dump.dump_world(world, folder)`: JSONL and CSV files, streaming.
- `seed.seed_website|seed_course|seed_platform_users(url, world)`, `seed.apply_changes(...)`:
  the databases, by COPY.
"""
