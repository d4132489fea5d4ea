package meter

// TwoLocalBrTableMiss returns opts with the br_table tracking keeping a
// site's last two indices in two i32 locals in every function, as cost
// table v6 first did everywhere.
func TwoLocalBrTableMiss(opts Options) Options {
	opts.brMissForm = brMissTwoLocals
	return opts
}

// PackedBrTableMiss returns opts with the br_table tracking keeping a
// site's last two indices packed in one i64 local in every function.
func PackedBrTableMiss(opts Options) Options {
	opts.brMissForm = brMissPacked
	return opts
}
