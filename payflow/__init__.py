"""payflow's operator layer: the settings model, the CLI, local services and process supervision."""
