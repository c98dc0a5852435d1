# bash completion for tcpconnect(8)
#
# Installed as /usr/share/bash-completion/completions/tcpconnect, where the
# bash-completion package loads it on first use; it needs nothing from that
# package and can also be sourced directly.

# Completes the value of option $1 from the prefix $2 into COMPREPLY. Returns 1
# when $1 takes no value.
_tcpconnect_values() {
    case $1 in
        --attach)
            mapfile -t COMPREPLY < <(compgen -W 'auto tp_btf raw_tp tracepoint' -- "$2")
            return 0
            ;;
        --cgroup)
            # A cgroup v2 directory.
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "$2")
            return 0
            ;;
        --cgroupmap | --mntnsmap)
            # A pinned BPF map, usually under /sys/fs/bpf.
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$2")
            return 0
            ;;
        --ringbuf-size)
            # A few common sizes; any power of two from one page to 1G is accepted.
            mapfile -t COMPREPLY < <(compgen -W '64K 256K 1M 4M 16M 64M 256M 1G' -- "$2")
            return 0
            ;;
        -p | --pid | -P | --port | -u | --uid | --duration | --shorter-than | \
            --dns-cache-size | --dns-max-age | --netns | \
            --exec-cache-size | --metrics | --metrics-top)
            # A number (or ADDR:PORT, a duration such as 250ms): nothing to offer.
            COMPREPLY=()
            return 0
            ;;
    esac
    return 1
}

_tcpconnect() {
    local cur prev
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    # "--attach=raw_tp" arrives as "--attach" "=" "raw_tp" because '=' is in
    # COMP_WORDBREAKS; treat it like "--attach raw_tp".
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    fi
    # Without the split (COMP_WORDBREAKS changed): "--attach=raw_tp" in one word.
    local pre=
    if [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        pre=$prev=
        cur=${cur#*=}
    fi

    if _tcpconnect_values "$prev" "$cur"; then
        [[ -z $pre ]] && return 0
        # Readline replaces the whole word: keep the option in front.
        local i
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=$pre${COMPREPLY[i]}; done
        return 0
    fi

    if [[ $cur == -* ]]; then
        local opts='-h --help --version -t --timestamp -p --pid -P --port -4 --ipv4 -6 --ipv6
            -L -s --lport --source-port -U --print-uid -u --uid -c --count -j --json
            --duration -v --verbose --attach --outcome --failed --lifetime
            --shorter-than --accept --by-process -d --dns --dns-cache-size
            --dns-max-age --container --parent --cmdline --exec-cache-size
            --metrics --quiet --metrics-top --netns --cgroup --cgroupmap --mntnsmap
            --ringbuf-size'
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
    fi
    return 0
}

complete -F _tcpconnect tcpconnect
