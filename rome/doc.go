// Package rome runs the resource market of SOS: offers, requests, epochs,
// allocation policies, escrow and settlement, usage attestation, jobs on
// leases (submission, results, measured usage, challenges decided by
// re-execution, bonds and slashing), internal certificates, rewards and
// governance. It is deterministic: every function that changes state is a
// pure function of the ledger State it is given and the block (height,
// time, previous hash); it iterates state in key order and never lets a Go
// map decide output order; all arithmetic is integer.
//
// # Model
//
// Resource kinds have fixed ids (1 compute/uTFLP, 2 bandwidth/uTBS,
// 3 energy/uKWTT, 4 storage/uSTOR); each kind settles in its own token.
// A provider's Offer has a capacity and a price per unit per epoch per kind,
// a region, coordinates, attributes, a reliability and an availability
// window. A consumer's Request has a demand and a maximum price per kind, a
// duration in epochs and constraints (region or distance, attributes,
// reliability, bundle). Accepting a request escrows its maximum cost
// Σ demand × max_price × epochs from the consumer into EscrowAccount. A
// Lease gives a request an amount of an offer at a price for epochs
// [Start, End).
//
// # Epochs
//
// Every block, EndBlock tallies governance proposals whose voting period
// ends and runs the job deadlines that end at the block (through a
// deadline index by height, of which it reads only the entries of that
// height): jobs without a result time out, challenge windows
// close, challenges without a majority lapse. At the last block of an
// epoch e (Clock.EndHeight) it:
//
//  1. settles the epoch before e of the live leases (reports for an epoch
//     are accepted during it and the next one): price × amount moves from
//     escrow to the provider, per kind in the kind's token; no report pays
//     in full, reports pay the smallest reported amount, two reports that
//     differ are a recorded dispute (the disputed part is not paid), two
//     reports count as attested delivery for the agreed amount; when the
//     lease ran jobs in the epoch, compute and bandwidth are paid as the
//     runtime measured them instead (MeasuredUnits) and count as measured
//     delivery. Only leases with a report, a meter reading or a missed
//     storage proof in that epoch are settled then; an epoch in which a
//     lease ran jobs is weighed (paid what the runtime measured, found by
//     its Metered record) at the lease's next settlement, and its reward
//     weighs the measured units at the epoch's own end (one sum per
//     provider the results write); an epoch with nothing to weigh is worth the same for every
//     such epoch of a lease (the leased amount, kinds paid by meter only
//     excepted; storage held for pinned blobs its proven byte-epochs, the
//     bytes due in the epoch, which were fixed before it began) and is
//     paid with the lease's next settlement: when a report, reading or miss comes,
//     at the end of its last epoch and its close, and at the latest
//     settle_interval_epochs (default 10) after the last one, at an epoch
//     its request's id staggers (the first epoch n with (n + request id)
//     mod the interval = 0), so that leases that started together are due
//     about 1/interval of them at a time. An epoch
//     therefore costs what happened in it, not the number of live leases
//     (a provider of an idle lease is paid in arrears, in one transfer;
//     Lease.SettledTo says how far);
//  2. frees the capacity of leases whose last epoch is e and closes leases
//     whose last epoch is settled; a closed request with no live lease gets
//     its unspent escrow back (unspent certificate credit is burned);
//  3. expires requests unmatched for request_ttl_epochs and offers past
//     their window (found by an index of window ends; matching reads only
//     open offers with free capacity, also indexed);
//  4. mints the epoch's reward to providers in proportion to attested units;
//  5. at the end of each certificate period, records one unsigned
//     certificate statement per (contributor, kind) with attested delivery;
//  6. snapshots open offers (remaining capacity, their provider's job
//     record) and requests (remaining demand) in ABI v2
//     (docs/rome-policy-abi.md), runs the active policy in
//     the policy VM (vm.Policies limits: 64 MiB of memory, 16 MiB of input
//     and result) with the policy_gas budget and a Host that refuses storage,
//     funds and calls, validates its output (Validate) and uses it; a
//     policy that traps or runs out of gas after handing in a list through
//     set_result (an anytime policy) gets that list used if it validates
//     (EpochRecord.Interrupted says how it stopped); if it returns garbage
//     or an infeasible list, or stops without a valid one, the epoch records
//     why and runs the built-in fallback instead (BuiltinAllocate: the
//     better of FirstCome and Greedy by total surplus, named in the
//     record); the leases start at e+1;
//  7. stores an EpochRecord (policy used, rejection reason, how an active
//     policy stopped, matched share,
//     utilization and clearing price per kind, payments, rewards, events).
//
// At the first block of an epoch (Clock.StartHeight) it draws the epoch's
// storage challenges when anything is held (an epoch of one block has them
// drawn at the end of the epoch before instead: storage.go).
//
// # Jobs
//
// A lease whose offer names a node (the account of the executing node's
// key) and holds a bond (moved to BondAccount) runs jobs: WASI command
// modules named by blob ids. The consumer submits (JobSubmit); the gas
// limit is reserved against the epoch's compute budget (leased compute ×
// gas_per_compute_unit) until the job ends. The node answers once, by the
// deadline (JobResult); the output root must be OutputRoot over the
// outputs listed; gas and bytes are metered in the result's epoch
// (Metered) and counted in the provider's ProviderRecord. Anyone may
// challenge a result for job_challenge_blocks with a deposit
// (JobChallenge); a committee of voting members re-executes and votes
// (JobVerdict); a majority for the result rejects the challenge (the
// deposit goes to the provider), a majority against it slashes
// job_slash_bps of the bond (the consumer's settled cost is refunded out
// of it, the challenger gets the rest and its deposit back), no majority
// lets it lapse. A bond returns when its offer is closed and idle: no
// lease active, and none of the jobs its ended leases left open
// (Offer.OpenJobs, counted when each lease ends from its Metered records,
// whose DueBy bounds when their jobs may still be due; no job writes its
// offer while its lease is active).
//
// # Certificates
//
// Execution holds no keys, so a certificate is born unsigned with its issuer
// chosen among the issuers (a governance parameter). Each contributor is
// certified at the end of its own certificate period, shifted by a phase
// from its address (certPhase), so that an epoch end certifies about
// 1/cert_period_epochs of the contributors and reads only their
// accumulators. A certificate record names its issuer by fingerprint; the
// key is in the issuer registry (written once per issuer, kept after
// governance removes it). The issuing node lists the statements
// waiting for it with PendingSignatures, signs each with SignPayload and
// submits the CertSign transactions; execution verifies the ML-DSA-65
// signature (purpose "certificate", the chain id) against the issuer key.
// A signed certificate verifies offline (VerifyFile), can be revoked by its
// issuer or a governance member, and can be redeemed as credit against a
// request for the same kind.
//
// # Governance
//
// Any account may propose a change of one parameter (GovParams). Members
// listed in genesis (extra.gov) and every contributor vote, weighted by the
// member's base weight plus its attested units. At the end of the voting
// period a proposal passes when the votes cast reach quorum_bps of the total
// weight and yes exceeds threshold_bps of yes+no; it then executes by itself
// (activating a policy, changing the epoch length, the reward schedule, the
// fallback policy, ...).
//
// # State layout
//
// Under ledger.PrefixRome (0x20), ids 8-byte big-endian: 0x01 params (JSON),
// 0x02 sequences (and counters: "jobs_due", "contrib_total"), 0x03 clock,
// 0x10 offers, 0x11 requests, 0x12 leases, 0x13 epoch records, 0x14
// policies, 0x15 prepared policy code, 0x16 certificates, 0x17 usage
// reports (lease|epoch), 0x18 region ids, 0x1a contributions, 0x1e
// certificate-period accumulators (address|kind|source: 0 reported,
// 1 runtime), 0x1f certificates awaiting a signature, 0x20/0x21 open
// offers/requests, 0x22 live leases, 0x23 jobs, 0x24 job deadlines
// (height|job id), 0x26 jobs waiting for a result (node address|job id),
// 0x27 jobs being challenged, 0x28 metered usage (lease|epoch; its
// LastJob and each job's PrevJob chain a lease's jobs, its DueBy bounds
// their deadlines), 0x29 provider job records (address), 0x3d
// leases with a report, reading or miss to weigh when an epoch settles
// (epoch|lease), 0x48 units the runtime measured per provider in an epoch,
// for its reward (epoch|address),
// 0x3e leases whose settlement is due at an epoch's end (epoch|lease),
// 0x3f open offers with free capacity, 0x40 offers by the end of their
// window (epoch|offer), 0x30-0x3c, 0x41-0x43 and 0x45-0x47 storage leases
// and meters (state.go lists them: pins, holdings, their slots, challenge
// lists, rounds, faults, suspects, providers' storage rates for rewards).
// Under
// ledger.PrefixGov (0x30): 0x01 proposals, 0x02 votes (id|voter), 0x04
// proposals being voted on (end height|id), 0x05 their count.
package rome
