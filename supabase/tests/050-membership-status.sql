-- Membership status precedence (header of 20261129080500_create_memberships.sql):
-- staff decision until the contract changes after it > contract paused/canceled >
-- newest payment evidence > contract active. Payments go through the worker's procedure;
-- contract and staff evidence are written as their procedures will write them.
begin;
\ir _helpers.psql

select plan(38);

select tests.create_practice('Status Clinic', 'status-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 1001) as account_id \gset
select tests.create_user('nurse@example.test') as nurse_id \gset
select tests.add_member(:'practice_id', :'nurse_id', 'staff');
select tests.map_product(:'practice_id', 'Testosterone', 'TRT');

-- One payment of Mia's TRT programme, through webhook, queue and worker.
create function tests.pay(p_payment_id bigint, p_created timestamptz, p_status text, p_source text default 'Recurring')
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        1001,
        tests.payment_json(p_payment_id, 1001, p_created, p_status, 'Sale', p_source, 120.00, 'Mia Member'),
        tests.invoice_json(p_payment_id + 100000, 901, 'Mia Member', array['Testosterone'], 120.00)
    )
$$;

-- The newest history entry of the membership.
create function tests.last_event(p_membership_id uuid)
returns table (old_status text, new_status text, source text, evidence_at timestamptz, reason text)
language sql
stable
set search_path = ''
as $$
    select e.old_status, e.new_status, e.source, e.evidence_at, e.reason
    from app.membership_events as e where e.membership_id = p_membership_id
    order by e.id desc limit 1
$$;

-- ---------------------------------------------------------------------------
-- Payment evidence
-- ---------------------------------------------------------------------------
select tests.pay(1, '2026-01-01 09:00+00', 'Approved');
select id as membership_id from app.memberships \gset

select results_eq(
    $$ select c.name, m.status, m.status_source, m.status_changed_at, m.started_on, m.last_paid_at
    from app.memberships as m inner join app.categories as c on m.category_id = c.id $$,
    $$ values ('TRT', 'active', 'payment', '2026-01-01 09:00+00'::timestamptz, '2026-01-01'::date,
        '2026-01-01 09:00+00'::timestamptz) $$,
    'a successful sale starts an active membership in the product''s programme'
);
select results_eq(
    format($$ select * from tests.last_event(%L) $$, :'membership_id'),
    $$ values (null::text, 'active', 'payment', '2026-01-01 09:00+00'::timestamptz, null::text) $$,
    'the new membership''s first history entry: none -> active, from the payment'
);

select tests.pay(2, '2026-02-01 09:00+00', 'Declined');
select results_eq(
    $$ select status, status_source, payment_status, payment_evidence_at from app.memberships $$,
    $$ values ('past_due', 'payment', 'past_due', '2026-02-01 09:00+00'::timestamptz) $$,
    'a later failed recurring payment makes it past_due'
);
select results_eq(
    format($$ select * from tests.last_event(%L) $$, :'membership_id'),
    $$ values ('active', 'past_due', 'payment', '2026-02-01 09:00+00'::timestamptz, null::text) $$,
    'the change is recorded: active -> past_due, from the payment, at the payment''s time'
);

select count(*) as events_before_late from app.membership_events \gset
select tests.pay(3, '2026-01-15 09:00+00', 'Approved');
select results_eq(
    $$ select status, payment_evidence_at, last_paid_at, started_on from app.memberships $$,
    $$ values ('past_due', '2026-02-01 09:00+00'::timestamptz, '2026-01-15 09:00+00'::timestamptz,
        '2026-01-01'::date) $$,
    'an older success arriving after the newer failure keeps past_due (last paid date still moves)'
);
select is(
    (select count(*) from app.membership_events),
    :'events_before_late'::bigint,
    'the late success writes no history'
);

select tests.pay(4, '2026-02-10 09:00+00', 'Declined', 'Virtual Terminal');
select results_eq(
    $$ select status, payment_evidence_at from app.memberships $$,
    $$ values ('past_due', '2026-02-01 09:00+00'::timestamptz) $$,
    'a declined one-off (not recurring) payment is no evidence'
);

select tests.pay(5, '2026-03-01 09:00+00', 'Approved');
select results_eq(
    format($$ select m.status, e.old_status, e.new_status from app.memberships as m,
        tests.last_event(m.id) as e where m.id = %L $$, :'membership_id'),
    $$ values ('active', 'past_due', 'active') $$,
    'a newer success makes it active again, and the change is recorded'
);

-- ---------------------------------------------------------------------------
-- Contract evidence
-- ---------------------------------------------------------------------------
update app.memberships
set contract_status = 'Inactive', contract_status_changed_at = '2026-03-05 09:00+00'
where id = :'membership_id';
select is(private.settle_membership_status(:'membership_id'), 'paused', 'a contract Inactive settles to paused');
select results_eq(
    format($$ select m.status, m.status_source, m.status_changed_at, e.old_status, e.new_status, e.source
        from app.memberships as m, tests.last_event(m.id) as e where m.id = %L $$, :'membership_id'),
    $$ values ('paused', 'contract', '2026-03-05 09:00+00'::timestamptz, 'active', 'paused', 'contract') $$,
    'paused from the contract, at the contract''s time, and recorded'
);

select count(*) as events_before_paid from app.membership_events \gset
select tests.pay(6, '2026-03-10 09:00+00', 'Approved');
select results_eq(
    $$ select status, payment_status, payment_evidence_at from app.memberships $$,
    $$ values ('paused', 'active', '2026-03-10 09:00+00'::timestamptz) $$,
    'a newer successful payment does not override a paused contract (the evidence is kept)'
);
select is(
    private.settle_membership_status(:'membership_id'),
    'paused',
    'settling again gives the same status'
);
select is(
    (select count(*) from app.membership_events),
    :'events_before_paid'::bigint,
    'no history is written when nothing changes'
);

update app.memberships
set contract_status = 'OnHold', contract_status_changed_at = '2026-03-12 09:00+00'
where id = :'membership_id';
select is(
    private.settle_membership_status(:'membership_id'),
    'active',
    'an unknown contract status is ignored: the payments decide (active)'
);
select results_eq(
    format($$ select m.status_source, m.contract_status, e.old_status, e.new_status, e.source
        from app.memberships as m, tests.last_event(m.id) as e where m.id = %L $$, :'membership_id'),
    $$ values ('payment', 'OnHold', 'paused', 'active', 'payment') $$,
    'the unknown status is kept verbatim; the change is recorded from the payment'
);

select results_eq(
    $$ select s, private.contract_membership_status(s)
    from unnest(array['Active', 'Inactive', 'Cancelled', 'Canceled', 'Deleted', 'Completed', ' CANCELLED ',
        'Suspended', null]) with ordinality as t (s, n) order by n $$,
    $$ values ('Active', 'active'), ('Inactive', 'paused'), ('Cancelled', 'canceled'), ('Canceled', 'canceled'),
        ('Deleted', 'canceled'), ('Completed', 'canceled'), (' CANCELLED ', 'canceled'), ('Suspended', null),
        (null, null) $$,
    'MX contract statuses map to membership statuses; unknown ones to nothing'
);

update app.memberships
set contract_status = 'Cancelled', contract_status_changed_at = '2026-03-20 09:00+00'
where id = :'membership_id';
select is(private.settle_membership_status(:'membership_id'), 'canceled', 'a contract Cancelled settles to canceled');
select results_eq(
    format($$ select m.status_source, m.canceled_at, e.old_status, e.new_status, e.source
        from app.memberships as m, tests.last_event(m.id) as e where m.id = %L $$, :'membership_id'),
    $$ values ('contract', '2026-03-20 09:00+00'::timestamptz, 'active', 'canceled', 'contract') $$,
    'canceled from the contract with canceled_at at the contract''s time, and recorded'
);
select results_eq(
    format(
        $$ select s, r.status, r.source
        from unnest(array['Deleted', 'Completed']) as s,
            app.memberships as m,
            private.resolve_membership_status(
                jsonb_populate_record(null::app.memberships, to_jsonb(m) || jsonb_build_object('contract_status', s))
            ) as r
        where m.id = %L order by s $$,
        :'membership_id'
    ),
    $$ values ('Completed', 'canceled', 'contract'), ('Deleted', 'canceled', 'contract') $$,
    'contracts Deleted and Completed resolve to canceled too'
);

update app.memberships
set contract_status = 'Active', contract_status_changed_at = '2026-03-25 09:00+00'
where id = :'membership_id';
select is(
    private.settle_membership_status(:'membership_id'),
    'active',
    'the contract active again: the payments decide (active)'
);
select results_eq(
    format($$ select status_source, canceled_at from app.memberships where id = %L $$, :'membership_id'),
    $$ values ('payment', null::timestamptz) $$,
    'reactivation clears canceled_at'
);

-- ---------------------------------------------------------------------------
-- Staff decisions
-- ---------------------------------------------------------------------------
update app.memberships
set
    staff_status = 'paused', staff_reason = 'travelling for two months', staff_user_id = :'nurse_id',
    staff_decided_at = '2026-03-28 09:00+00'
where id = :'membership_id';
select is(private.settle_membership_status(:'membership_id'), 'paused', 'a staff pause wins over an active contract');
select results_eq(
    format(
        $$ select e.old_status, e.new_status, e.source, e.reason, e.actor_user_id, e.evidence_at
        from app.membership_events as e where e.membership_id = %L order by e.id desc limit 1 $$,
        :'membership_id'
    ),
    format(
        $$ values ('active', 'paused', 'staff', 'travelling for two months', %L::uuid,
            '2026-03-28 09:00+00'::timestamptz) $$,
        :'nurse_id'
    ),
    'the staff decision is recorded with its reason and the member who made it'
);

select tests.pay(7, '2026-04-01 09:00+00', 'Declined');
select results_eq(
    $$ select status, status_source, payment_status from app.memberships $$,
    $$ values ('paused', 'staff', 'past_due') $$,
    'a newer failed payment does not override the staff decision'
);

-- the contract changed before the decision (fetched only now): the decision still holds
update app.memberships
set contract_status = 'Inactive', contract_status_changed_at = '2026-03-27 09:00+00'
where id = :'membership_id';
update app.memberships
set staff_status = 'active', staff_reason = 'back from travel', staff_decided_at = '2026-04-05 09:00+00'
where id = :'membership_id';
select is(
    private.settle_membership_status(:'membership_id'),
    'active',
    'a staff reactivation wins over an older contract Inactive and over past_due payments'
);
select results_eq(
    format($$ select m.status_source, e.old_status, e.new_status, e.source, e.reason
        from app.memberships as m, tests.last_event(m.id) as e where m.id = %L $$, :'membership_id'),
    $$ values ('staff', 'paused', 'active', 'staff', 'back from travel') $$,
    'the reactivation is recorded as the staff''s'
);
select results_eq(
    format(
        $$ select r.status, r.source
        from app.memberships as m,
            private.resolve_membership_status(
                jsonb_populate_record(
                    null::app.memberships,
                    to_jsonb(m) || jsonb_build_object('contract_status_changed_at', m.staff_decided_at)
                )
            ) as r
        where m.id = %L $$,
        :'membership_id'
    ),
    $$ values ('active', 'staff') $$,
    'a contract change at the very time of the decision does not end it'
);
select results_eq(
    format(
        $$ select r.status, r.source
        from app.memberships as m,
            private.resolve_membership_status(
                jsonb_populate_record(
                    null::app.memberships,
                    to_jsonb(m) || jsonb_build_object(
                        'contract_status', 'Active', 'contract_status_changed_at', '2026-04-06 09:00+00'
                    )
                )
            ) as r
        where m.id = %L $$,
        :'membership_id'
    ),
    $$ values ('past_due', 'payment') $$,
    'once the contract changes after the decision to Active, the payments decide again'
);

update app.memberships
set contract_status = 'Cancelled', contract_status_changed_at = '2026-04-10 09:00+00'
where id = :'membership_id';
select is(
    private.settle_membership_status(:'membership_id'),
    'canceled',
    'a contract change after the staff decision ends the decision (Cancelled -> canceled)'
);
select results_eq(
    format($$ select m.status_source, m.canceled_at, e.old_status, e.new_status, e.source
        from app.memberships as m, tests.last_event(m.id) as e where m.id = %L $$, :'membership_id'),
    $$ values ('contract', '2026-04-10 09:00+00'::timestamptz, 'active', 'canceled', 'contract') $$,
    'recorded as the contract''s'
);

-- ---------------------------------------------------------------------------
-- The history as a whole
-- ---------------------------------------------------------------------------
select results_eq(
    format(
        $$ select old_status, new_status, source from app.membership_events where membership_id = %L order by id $$,
        :'membership_id'
    ),
    $$ values
        (null, 'active', 'payment'),
        ('active', 'past_due', 'payment'),
        ('past_due', 'active', 'payment'),
        ('active', 'paused', 'contract'),
        ('paused', 'active', 'payment'),
        ('active', 'canceled', 'contract'),
        ('canceled', 'active', 'payment'),
        ('active', 'paused', 'staff'),
        ('paused', 'active', 'staff'),
        ('active', 'canceled', 'contract') $$,
    'the history holds every change, in order, and nothing else'
);
select is_empty(
    format(
        $$ select id from (
            select e.id, e.old_status, lag(e.new_status) over (order by e.id) as previous_new_status
            from app.membership_events as e where e.membership_id = %L
        ) as h where h.old_status is distinct from h.previous_new_status $$,
        :'membership_id'
    ),
    'each entry''s old status is the previous entry''s new status'
);
select is(
    (select e.new_status from tests.last_event(:'membership_id') as e),
    (select status from app.memberships where id = :'membership_id'),
    'the last entry''s new status is the membership''s status'
);
select is_empty(
    $$ select e.id from app.membership_events as e inner join app.memberships as m on e.membership_id = m.id
    where e.practice_id <> m.practice_id $$,
    'every history entry belongs to its membership''s practice'
);

-- ---------------------------------------------------------------------------
-- refresh_membership_from_payments on its own
-- ---------------------------------------------------------------------------
select tests.process_payment(
    1001,
    tests.payment_json(9001, 1001, '2026-05-01 09:00+00', 'Declined', 'Sale', 'Recurring', 80.00, 'Noah New'),
    tests.invoice_json(9101, 902, 'Noah New', array['Testosterone'], 80.00)
);
select results_eq(
    $$ select m.status, m.started_on, m.last_paid_at, m.payment_evidence_at
    from app.memberships as m inner join app.patients as p on m.patient_id = p.id where p.mx_customer_id = 902 $$,
    $$ values ('past_due', null::date, null::timestamptz, '2026-05-01 09:00+00'::timestamptz) $$,
    'a patient whose only payment failed has a past_due membership that never started'
);
select is(
    private.refresh_membership_from_payments(
        :'practice_id',
        (select id from app.patients where mx_customer_id = 901),
        tests.category_id(:'practice_id', 'Weight Loss')
    ),
    null,
    'no payment in a programme: no membership is created'
);
select is(
    (select count(*) from app.memberships),
    2::bigint,
    'two memberships in all: Mia''s and Noah''s TRT'
);
select count(*) as events_before_refresh from app.membership_events \gset
select private.refresh_membership_from_payments(
    :'practice_id', (select patient_id from app.memberships where id = :'membership_id'),
    tests.category_id(:'practice_id', 'TRT')
);
select is(
    (select count(*) from app.membership_events),
    :'events_before_refresh'::bigint,
    'refreshing from unchanged payments writes no history'
);

select * from finish();
rollback;
