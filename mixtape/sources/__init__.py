"""Pure readers, one module or folder per collection: each turns a spec source into Clip records
(metadata only) and Rejects, without Beam. ``registry`` maps a source kind to its reader."""
