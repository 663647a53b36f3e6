"""The plant's configuration in one place: the field checks and validation that the wizard, the REST API and the YAML
file share (fields, validation, plant_items, plant_file), its storage with the audit log (store), saving and
deleting machines with a reload of the collectors (admin), and the demo plant's own configuration (demo_plant)."""
