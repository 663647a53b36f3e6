"""/machine-config/: the machine wizard, one module per step (page.py lays them out and moves between them):

    protocol_step    1 the kind of PLC          discover_step  4 find the tags (list, browse, layout, scan)
    settings_step    2 address and settings     map_step       5 roles, scaling, live preview
    connection_step  3 test the connection      save_step      6 save, then the first live values
    machine_list     the machines beside the wizard: state, edit, enable, delete
    forms            what the steps share
"""
