# bash completion for tcpconnect(8) and the bcc tools it also answers to by
# name: tcpaccept(8), tcplife(8), tcpconnlat(8).
#
# Installed as /usr/share/bash-completion/completions/tcpconnect, with
# tcpaccept, tcplife and tcpconnlat there as symlinks to it: the
# bash-completion package loads it, by command name, on first use of any of
# them. It needs nothing from that package and can also be sourced directly.

# The options of command $1 (tcpconnect for a name it does not know): those of
# the bcc tool of that name, then the ones every name accepts.
_tcpconnect_options() {
    local common='-h --help --version -j --json --duration -v --verbose --attach
        --ringbuf-size -u --uid -U --print-uid --netns --cgroup --cgroupmap
        --mntnsmap --container --runtime-socket --container-name --pod --pod-namespace
        --parent --cmdline --exec-cache-size --metrics --quiet --metrics-top --metrics-container'
    case $1 in
        tcpaccept) echo "-T --time -t --timestamp -p --pid -P --port -4 --ipv4 -6 --ipv6 $common" ;;
        tcplife) echo "-T --time -t --timestamp -w --wide -s --csv -p --pid -L --localport
            -D --remoteport -4 --ipv4 -6 --ipv6 $common" ;;
        tcpconnlat) echo "-t --timestamp -T --time -p --pid -L --lport -4 --ipv4 -6 --ipv6 $common" ;;
        *) echo "-T --time -t --timestamp -p --pid -P --port -4 --ipv4 -6 --ipv6 -L -s --lport
            --source-port -c --count --outcome --failed --lifetime --shorter-than
            --accept --by-process --interval --cumulative --rows --top --hist --hist-by -d --dns
            --dns-cache-size --dns-max-age $common" ;;
    esac
}

# Completes the value of option $2 of command $1 from the prefix $3 into
# COMPREPLY. Returns 1 when that option takes no value.
_tcpconnect_values() {
    local name=$1
    shift
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
        --cgroupmap | --mntnsmap | --runtime-socket)
            # A pinned BPF map, usually under /sys/fs/bpf; a runtime's socket under /run.
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$2")
            return 0
            ;;
        --hist-by)
            mapfile -t COMPREPLY < <(compgen -W 'port process' -- "$2")
            return 0
            ;;
        --ringbuf-size)
            # A few common sizes; any power of two from one page to 1G is accepted.
            mapfile -t COMPREPLY < <(compgen -W '64K 256K 1M 4M 16M 64M 256M 1G' -- "$2")
            return 0
            ;;
        -p | --pid | -u | --uid | --duration | --netns | --exec-cache-size | \
            --metrics | --metrics-top | --interval | --rows | --container-name | --pod | \
            --pod-namespace)
            # A number (or ADDR:PORT, a duration such as 250ms, names): nothing to offer.
            COMPREPLY=()
            return 0
            ;;
    esac
    # Values that only some names take (tcpconnlat's -L takes none).
    case $name:$1 in
        tcpconnect:-P | tcpconnect:--port | tcpconnect:--shorter-than | \
            tcpconnect:--dns-cache-size | tcpconnect:--dns-max-age | \
            tcpaccept:-P | tcpaccept:--port | \
            tcplife:-L | tcplife:--localport | tcplife:-D | tcplife:--remoteport)
            COMPREPLY=()
            return 0
            ;;
    esac
    return 1
}

_tcpconnect() {
    local name=${COMP_WORDS[0]##*/} cur prev
    case $name in
        tcpaccept | tcplife | tcpconnlat) ;;
        *) name=tcpconnect ;;
    esac
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

    if _tcpconnect_values "$name" "$prev" "$cur"; then
        [[ -z $pre ]] && return 0
        # Readline replaces the whole word: keep the option in front.
        local i
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=$pre${COMPREPLY[i]}; done
        return 0
    fi

    # tcpconnlat's min_ms, the one positional argument: nothing to offer.
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$(_tcpconnect_options "$name")" -- "$cur")
    fi
    return 0
}

complete -F _tcpconnect tcpconnect tcpaccept tcplife tcpconnlat
