"""The user's own data from local files: tables (CSV/Parquet), arrays (.npz), image folder trees."""
