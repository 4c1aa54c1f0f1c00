# Make the packaged /etc/retentiond/retentiond.conf from etc/retentiond.conf
# with every rule disabled: an unconfigured retention daemon must never
# delete anything, even if someone starts it before editing the file.
#
#   awk -f debian/disable-rules.awk etc/retentiond.conf > retentiond.conf
#
# Each rule of the top-level "rules = ( ... )" list gets "enabled = false;"
# as its first setting, and any "enabled = ...;" it already had is removed
# (libconfig refuses a setting given twice). Fails when it finds no rule or
# when it cannot tell where a rule starts, so a reshaped example config
# breaks the package build instead of shipping enabled rules.

BEGIN {
	in_rules = 0	# inside the top-level rules list
	depth = 0	# { } nesting inside that list; a rule is depth 1
	rules = 0
	print "# As installed by the retentiond package: the example config with"
	print "# \"enabled = false;\" in every rule, so that nothing is deleted or"
	print "# de-identified before an administrator has adapted the rules to their"
	print "# own database and policy. Enable a rule by setting it to true (or"
	print "# removing the line), then run \"retentiond check\" and"
	print "# \"retentiond plan\" before enabling a unit."
	print "#"
}

# The line without its strings and comment, for counting braces.
function code(line) {
	gsub(/"([^"\\]|\\.)*"/, "\"\"", line)
	sub(/#.*/, "", line)
	sub(/\/\/.*/, "", line)
	return line
}

function count(s, ch,    n, i) {
	n = 0
	for (i = 1; i <= length(s); i++)
		if (substr(s, i, 1) == ch)
			n++
	return n
}

!in_rules && code($0) ~ /^[ \t]*rules[ \t]*[=:][ \t]*\([ \t]*$/ {
	in_rules = 1
	print
	next
}

in_rules {
	c = code($0)
	if (depth == 1 && c ~ /(^|[ \t;])enabled[ \t]*[=:]/) {
		# an "enabled" setting of the rule itself: drop it (a line
		# holding other settings too is not expected in the example)
		if (c !~ /^[ \t]*enabled[ \t]*[=:][^;]*;[ \t]*$/) {
			printf "disable-rules: line %d: \"enabled\" shares its line " \
			       "with other settings\n", NR > "/dev/stderr"
			failed = 1
			exit 1
		}
		next
	}
	opens = count(c, "{")
	closes = count(c, "}")
	if (depth == 0 && opens > 0) {
		if (c !~ /^[ \t]*\{[ \t]*$/) {
			printf "disable-rules: line %d: a rule should start " \
			       "with \"{\" alone on its line\n", NR > "/dev/stderr"
			failed = 1
			exit 1
		}
		print
		match($0, /^[ \t]*/)
		print substr($0, 1, RLENGTH) "  enabled = false;                     # packaged default; see the top of this file"
		rules++
		depth += opens - closes
		next
	}
	depth += opens - closes
	if (depth == 0 && c ~ /\)/)
		in_rules = 0
	print
	next
}

{ print }

END {
	if (failed)
		exit 1
	if (rules == 0) {
		print "disable-rules: no rules found" > "/dev/stderr"
		exit 1
	}
	printf "disable-rules: %d rules disabled\n", rules > "/dev/stderr"
}
