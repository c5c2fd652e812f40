"""The chat's rules: who may do what (access), what is stored and read (writes, snapshots,
direct rooms, mutes, inputs), the frames every socket is sent (events), presence, limits,
mentions, reactions, bots and accounts.
"""
