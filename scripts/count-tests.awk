# Reads meson's testlog.json (one JSON object per test run) and prints
# "N passed, M failed" over the test cases of all suites.
function add_summary(text,    found, numbers, count) {
    if (match(text, /test cases: *[0-9]+ \| *[0-9]+ passed \| *[0-9]+ failed/)) {
        found = substr(text, RSTART, RLENGTH)
        count = split(found, numbers, /[^0-9]+/)
        passed += numbers[count - 2]
        failed += numbers[count - 1]
        return 1
    }
    if (match(text, /[0-9]+ passed, [0-9]+ failed/)) {
        found = substr(text, RSTART, RLENGTH)
        split(found, numbers, /[^0-9]+/)
        passed += numbers[1]
        failed += numbers[2]
        return 1
    }
    return 0
}
{
    ok = ($0 ~ /"result": "(OK|EXPECTEDFAIL|SKIP)"/)
    failed_before = failed
    add_summary($0)
    # A suite that failed (crash, timeout) without reporting a failed case.
    if (!ok && failed == failed_before) {
        failed += 1
    }
}
END { printf "%d passed, %d failed\n", passed, failed }
