-- Issue 12, item 9: the recategorisation trigger checks the caller's rights before it does
-- any work. (The other parts of item 9 are in 020-rls-isolation.sql: app.sync_runs for owners
-- and admins, app.contracts without raw; in 120-sync-runs.sql; and in 010-catalog.sql.)
begin;
\ir _helpers.psql

select plan(7);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('owner-a@example.test') as owner_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('owner-b@example.test') as owner_b \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'owner_b', 'owner');
select tests.create_merchant_account(:'practice_a', 9001) as account_a \gset
select tests.map_product(:'practice_a', 'Testosterone', 'TRT') as product_a \gset
select tests.process_payment(
    9001,
    tests.payment_json(91001, 9001, '2026-01-05 10:00+00', p_customer_name => 'Alice A'),
    tests.invoice_json(92001, 901, 'Alice A', array['Testosterone'])
);
select tests.category_id(:'practice_a', 'Weight Loss') as weight_loss_a \gset

-- An outsider probing practice A's product ids: before the fix the definer trigger answered
-- "programme ... is not one of this practice's" (22023) for a real product and a wrong
-- programme, "product ... is not one of this practice's" for a wrong product: an oracle for
-- another practice's ids. Now every such request is refused before any lookup.
select tests.authenticate_as(:'owner_b');
select throws_ok(
    format(
        $$
            insert into app.product_category_changes (practice_id, product_id, to_category_id)
            values (%L, %L, gen_random_uuid())
        $$,
        :'practice_a', :'product_a'
    ),
    '42501', 'only an owner or admin of the practice may move its products',
    'an owner of B asking to move a product of A is refused before the trigger looks at it'
);
select throws_ok(
    format(
        $$
            insert into app.product_category_changes (practice_id, product_id, to_category_id)
            values (%L, gen_random_uuid(), gen_random_uuid())
        $$,
        :'practice_a'
    ),
    '42501', 'only an owner or admin of the practice may move its products',
    'and gets the same answer for a product id that does not exist'
);
select tests.clear_authentication();

select tests.authenticate_as(:'staff_a');
select throws_ok(
    format(
        $$
            insert into app.product_category_changes (practice_id, product_id, to_category_id)
            values (%L, %L, %L)
        $$,
        :'practice_a', :'product_a', :'weight_loss_a'
    ),
    '42501', 'only an owner or admin of the practice may move its products',
    'staff of A may not move A''s products'
);
select tests.clear_authentication();
select is(
    (select c.name from app.products as p inner join app.categories as c on p.category_id = c.id where p.id = :'product_a'),
    'TRT',
    'the product did not move'
);

-- The owner of A still moves A's products, through the api function and directly.
select tests.authenticate_as(:'owner_a');
select lives_ok(
    format($$ select api.set_product_category(%L, %L) $$, :'product_a', :'weight_loss_a'),
    'the owner of A moves a product of A'
);
select tests.clear_authentication();
select is(
    (select c.name from app.products as p inner join app.categories as c on p.category_id = c.id where p.id = :'product_a'),
    'Weight Loss',
    'and it moved, its lines with it'
);
select is(
    (select count(*)::integer from app.invoice_lines where product_id = :'product_a' and category_id = :'weight_loss_a'),
    1,
    'the invoice line followed'
);

select * from finish();
rollback;
