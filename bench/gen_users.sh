#!/usr/bin/env bash
# Writes a CSV export of N synthetic users (the columns of config/users.example.csv
# that matter at scale) to stdout: bench/gen_users.sh 1000000 > users.csv
# Deterministic: the same N always gives the same file.
set -euo pipefail
n=${1:?usage: gen_users.sh N}
awk -v n="$n" 'BEGIN {
  split("Engineering Sales Support Finance Marketing People Legal Operations", dept, " ")
  split("Engineer Manager Analyst Director Specialist Associate", title, " ")
  split("London Paris Berlin Madrid Lisbon Dublin", city, " ")
  split("Ada Grace Alan Edsger Barbara Donald Frances Ken Radia John Margaret Dennis Leslie Sophie Tim Hedy Claude Annie Niklaus Joan", first, " ")
  split("Lovelace Hopper Turing Dijkstra Liskov Knuth Allen Thompson Perlman McCarthy Hamilton Ritchie Lamport Wilson Lee Lamarr Shannon Easley Wirth Clarke Backus Kay Cerf Kahn Ng", last, " ")
  print "employee_id,work_email,first_name,last_name,department,title,status,location"
  for (i = 1; i <= n; i++) {
    printf "E%07d,user%07d@example.com,%s,%s,%s,%s,Active,%s\n", i, i, \
      first[i % 20 + 1], last[i % 25 + 1], dept[i % 8 + 1], title[i % 6 + 1], city[i % 6 + 1]
  }
}'
